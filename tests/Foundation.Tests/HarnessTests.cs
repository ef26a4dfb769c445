using Containerd.Testing;
using Xunit;

namespace Foundation.Tests;

/// <summary>
/// The private containerd harness proves itself: a busybox image built here runs under runc and prints, on the
/// containerd release line CONTAINERD_VERSION selects (1.6, 1.7 or 2), and teardown leaves nothing behind.
/// </summary>
[Trait("Category", "Integration")]
public sealed class HarnessTests
{
    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Busybox_runs_under_runc_and_prints()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await using var containerd = await ContainerdFixture.StartAsync();

        await containerd.ImportAsync(busybox.TarPath);
        var id = "echo-" + Guid.NewGuid().ToString("N")[..8];
        var output = await containerd.RunCtrAsync("run", "--rm", busybox.Name, id, "echo", "hello");

        Assert.Equal("hello", output.Trim());
        Assert.Empty(Lines(await containerd.RunCtrAsync("containers", "ls", "-q")));
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Started_instance_reports_the_requested_version_and_sockets()
    {
        await using var containerd = await ContainerdFixture.StartAsync();

        var expected = containerd.Version == "2" ? " 2." : " " + containerd.Version + ".";
        Assert.Contains(expected, containerd.BinaryVersion);
        var version = await containerd.RunCtrAsync("version");
        Assert.Contains("Server:", version);
        Assert.True(File.Exists(containerd.Address), containerd.Address);
        Assert.True(File.Exists(containerd.TtrpcAddress), containerd.TtrpcAddress);
        var config = await File.ReadAllTextAsync(containerd.ConfigPath);
        Assert.StartsWith(containerd.Version == "2" ? "version = 3" : "version = 2", config);
    }

    [Fact]
    public async Task Teardown_after_a_detached_container_leaves_no_process_mount_or_socket()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        var containerd = await ContainerdFixture.StartAsync();
        Leftovers before;
        try
        {
            await containerd.ImportAsync(busybox.TarPath);
            await containerd.RunCtrAsync("run", "-d", busybox.Name, "sleeper", "sleep", "600");
            before = containerd.FindLeftovers();
        }
        finally
        {
            // The test deliberately leaves the task running: teardown has to deal with it.
            await containerd.DisposeAsync();
        }

        // While running, the scan sees the shim, the container's sleep, its rootfs mount and its shim socket:
        // so an empty scan afterwards means they are gone, not that the scan is blind.
        Assert.Contains(before.Processes, p => p.Contains("containerd-shim-runc-v2", StringComparison.Ordinal));
        Assert.Contains(before.Processes, p => p.Contains("sleep 600", StringComparison.Ordinal));
        Assert.Contains(before.Mounts, m => m.EndsWith("/sleeper/rootfs", StringComparison.Ordinal));
        Assert.Contains(containerd.ShimSocketPath(containerd.Namespace, "sleeper"), before.Paths);

        var after = containerd.FindLeftovers();
        Assert.True(after.IsEmpty, after.ToString());
        Assert.Empty(containerd.TeardownProblems);
        Assert.False(File.Exists(containerd.Address));
        // ctr keeps its fifos under /run/containerd/fifo; another test's teardown may have removed the whole folder.
        var fifos = Directory.Exists("/run/containerd/fifo") ? Directory.EnumerateDirectories("/run/containerd/fifo") : [];
        Assert.DoesNotContain(fifos, d => File.Exists(Path.Combine(d, "sleeper-stdout")));
    }

    [Fact]
    public async Task Teardown_after_containerd_was_killed_still_cleans_up()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        var containerd = await ContainerdFixture.StartAsync();
        try
        {
            await containerd.ImportAsync(busybox.TarPath);
            await containerd.RunCtrAsync("run", "-d", busybox.Name, "orphan", "sleep", "600");
            // A crashed containerd: shims and the container keep running without it.
            System.Diagnostics.Process.GetProcessById(containerd.Pid).Kill();
        }
        finally
        {
            await containerd.DisposeAsync();
        }

        var after = containerd.FindLeftovers();
        Assert.True(after.IsEmpty, after.ToString());
    }

    [Fact]
    public async Task Teardown_removes_the_network_namespace_a_container_joined()
    {
        // What CRI does for a pod, done by hand: a pinned network namespace the sandbox container joins.
        var busybox = await TestImages.BuildBusyboxAsync();
        var name = "cni-test-" + Guid.NewGuid().ToString("N")[..8];
        var netns = "/var/run/netns/" + name;
        var added = await ProcessRunner.RunAsync("ip", ["netns", "add", name]);
        Assert.True(added.Succeeded, added.ToString());
        var containerd = await ContainerdFixture.StartAsync();
        try
        {
            await containerd.ImportAsync(busybox.TarPath);
            await containerd.RunCtrAsync("run", "-d", "--with-ns", "network:" + netns, busybox.Name, "pod", "sleep", "600");
            Assert.True(File.Exists(netns), netns);
        }
        finally
        {
            await containerd.DisposeAsync();
            if (File.Exists(netns))
            {
                await ProcessRunner.RunAsync("ip", ["netns", "delete", name]);
                Assert.Fail($"teardown left {netns} behind");
            }
        }

        Assert.True(containerd.FindLeftovers().IsEmpty, containerd.FindLeftovers().ToString());
        Assert.Empty(containerd.TeardownProblems);
    }

    [Fact]
    public async Task Reaper_cleans_an_instance_whose_test_process_died_before_teardown()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        // A private temp root, so the reaper cannot touch instances of tests running in parallel.
        var tempRoot = Directory.CreateTempSubdirectory("reap-").FullName;
        var containerd = await ContainerdFixture.StartAsync(new ContainerdOptions { TempRoot = tempRoot });
        try
        {
            await containerd.ImportAsync(busybox.TarPath);
            await containerd.RunCtrAsync("run", "-d", busybox.Name, "abandoned", "sleep", "600");
            // What a killed test host leaves: containerd gone, shim and container still running, rootfs mounted.
            System.Diagnostics.Process.GetProcessById(containerd.Pid).Kill();
            await Task.Delay(200);
            Assert.NotEmpty(containerd.FindLeftovers().Processes);

            var reaped = await ContainerdFixture.ReapStaleAsync(tempRoot, TimeSpan.Zero);

            Assert.Equal([containerd.WorkDir], reaped);
            Assert.True(containerd.FindLeftovers().IsEmpty, containerd.FindLeftovers().ToString());
        }
        finally
        {
            await containerd.DisposeAsync();
            Directory.Delete(tempRoot, recursive: true);
        }
    }

    [Fact]
    public async Task Failing_ctr_command_reports_its_output_and_the_log_tail()
    {
        await using var containerd = await ContainerdFixture.StartAsync();

        var error = await Assert.ThrowsAsync<CtrCommandException>(
            () => containerd.RunCtrAsync("tasks", "start", "no-such-container"));

        Assert.NotEqual(0, error.Result.ExitCode);
        Assert.Contains("not found", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("containerd log", error.Message);
    }

    [Fact]
    public async Task Cri_plugin_loads_when_enabled_with_a_registered_runtime()
    {
        await using var containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            EnableCri = true,
            CriRuntimes = new Dictionary<string, string> { ["wasmtime"] = "io.containerd.wasmtime.v1" },
        });

        var plugins = Lines(await containerd.RunCtrAsync("plugins", "ls"));

        var cri = Assert.Single(plugins, p => p.Contains("io.containerd.grpc.v1", StringComparison.Ordinal) && p.Contains(" cri ", StringComparison.Ordinal));
        Assert.EndsWith("ok", cri);
        var config = await File.ReadAllTextAsync(containerd.ConfigPath);
        Assert.Contains("restrict_oom_score_adj = true", config);
        Assert.Contains("runtime_type = \"io.containerd.wasmtime.v1\"", config);
    }

    [Fact]
    public async Task Cri_plugin_is_off_by_default()
    {
        await using var containerd = await ContainerdFixture.StartAsync();

        var plugins = Lines(await containerd.RunCtrAsync("plugins", "ls"));

        Assert.DoesNotContain(plugins, p => p.Contains(" cri ", StringComparison.Ordinal) && p.EndsWith("ok", StringComparison.Ordinal));
    }

    private static string[] Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
