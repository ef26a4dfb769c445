using System.Diagnostics;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// Device rules enforced by the kernel, through the kit's cgroup classes: a real v1 devices cgroup on this host and a
/// real BPF device filter on a cgroup in the host's cgroup2 mount (on a hybrid host the unified hierarchy holds no
/// controller, but a device program needs none). In each, a process moved into the cgroup opens an allowed and a
/// denied device, before and after an update.
/// </summary>
[Trait("Category", "Integration")]
public sealed class KitDeviceCgroupTests(ITestOutputHelper output)
{
    private static readonly List<LinuxDeviceCgroup> NullOnly =
    [
        new() { Allow = false, Access = "rwm" },
        new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
    ];

    private static readonly List<LinuxDeviceCgroup> NullAndReadingZero =
    [
        .. NullOnly,
        new() { Allow = true, Type = "c", Major = 1, Minor = 5, Access = "r" },
    ];

    [Fact]
    public async Task Real_v1_devices_cgroup_denies_what_the_rules_do_not_allow_and_an_update_changes_only_that()
    {
        var host = CgroupHierarchy.Host;
        if (host.Version != CgroupVersion.V1 || !host.Controllers.TryGetValue("devices", out var devicesRoot))
        {
            output.WriteLine("SKIPPED: this host has no cgroup v1 devices hierarchy (Real_v2_... covers v2)");
            return;
        }
        var parent = $"shim-tests-devices-{Guid.NewGuid().ToString("N")[..8]}";
        var cgroup = Cgroup.Create(host, $"/{parent}/c", new LinuxResources { Devices = NullOnly });
        try
        {
            var list = Path.Join(devicesRoot, parent, "c", "devices.list");
            Assert.Equal("c 1:3 rwm", File.ReadAllText(list).Trim());
            await AssertReadsAsync(cgroup, "/dev/null");
            await AssertRefusedAsync(cgroup, "/dev/zero");

            cgroup.Apply(new LinuxResources { Devices = NullAndReadingZero });
            Assert.Equal("c 1:3 rwm\nc 1:5 r", File.ReadAllText(list).Trim());
            await AssertReadsAsync(cgroup, "/dev/zero");
            await AssertWriteRefusedAsync(cgroup, "/dev/zero");

            // A rule the kernel would ignore is refused, and the cgroup keeps what it had.
            var e = Assert.Throws<ShimException>(() => cgroup.Apply(new LinuxResources
            {
                Devices = [new() { Allow = true, Type = "c", Access = "rwm" }, new() { Allow = false, Type = "c", Major = 1, Minor = 5, Access = "r" }],
            }));
            Assert.Equal(StatusCode.InvalidArgument, e.Code);
            Assert.Equal("c 1:3 rwm\nc 1:5 r", File.ReadAllText(list).Trim());
        }
        finally
        {
            cgroup.Delete(TimeSpan.FromSeconds(10));
            foreach (var mount in host.Controllers.Values.Distinct())
            {
                TryRemove(Path.Join(mount, parent));
            }
        }
        Assert.All(cgroup.Directories, d => Assert.False(Directory.Exists(d), $"{d} remains"));
    }

    [Fact]
    public async Task Real_v2_device_filter_is_a_bpf_program_that_an_update_replaces()
    {
        if (UnifiedMount() is not { } unified)
        {
            output.WriteLine("SKIPPED: this host mounts no cgroup2 hierarchy");
            return;
        }
        var path = $"/shim-tests-devices-{Guid.NewGuid().ToString("N")[..8]}";
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(unified), path, new LinuxResources { Devices = NullOnly });
        var dir = cgroup.Directories[0];
        try
        {
            var before = Attached(dir);
            Assert.Single(before);
            await AssertReadsAsync(cgroup, "/dev/null");
            await AssertRefusedAsync(cgroup, "/dev/zero");

            cgroup.Apply(new LinuxResources { Devices = NullAndReadingZero });
            var after = Attached(dir);
            output.WriteLine($"{dir}: device programs {string.Join(",", before)} before the update, {string.Join(",", after)} after");
            Assert.Single(after);
            Assert.NotEqual(before[0], after[0]);
            await AssertReadsAsync(cgroup, "/dev/zero");
            await AssertWriteRefusedAsync(cgroup, "/dev/zero");
            await AssertReadsAsync(cgroup, "/dev/null");

            // An update without device rules leaves the filter alone.
            cgroup.Apply(new LinuxResources { Pids = null });
            Assert.Equal(after, Attached(dir));
        }
        finally
        {
            cgroup.Delete(TimeSpan.FromSeconds(10));
        }
        Assert.False(Directory.Exists(dir), $"{dir} remains");
    }

    private static List<uint> Attached(string dir)
    {
        var fd = Libc.Open(dir, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"open {dir}");
        try
        {
            return BpfDeviceFilter.AttachedPrograms(dir, fd);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    private async Task AssertReadsAsync(Cgroup cgroup, string device)
    {
        var (status, stdout, stderr) = await RunInAsync(cgroup, $"head -c 4 {device} | wc -c");
        Assert.True(status == 0 && stderr.Length == 0, $"reading {device}: status {status}, stderr {stderr}");
        Assert.Equal(device == "/dev/null" ? "0" : "4", stdout.Trim());
    }

    private async Task AssertRefusedAsync(Cgroup cgroup, string device)
    {
        var (_, stdout, stderr) = await RunInAsync(cgroup, $"head -c 4 {device} | wc -c");
        Assert.Equal("0", stdout.Trim());
        Assert.Contains("Operation not permitted", stderr);
    }

    private async Task AssertWriteRefusedAsync(Cgroup cgroup, string device)
    {
        var (status, _, stderr) = await RunInAsync(cgroup, $"printf x > {device}");
        Assert.NotEqual(0, status);
        Assert.Contains("Operation not permitted", stderr);
    }

    /// <summary>Runs <paramref name="script"/> with /bin/sh in <paramref name="cgroup"/>: the shell waits for a line on
    /// stdin, which it gets only once it has been moved in, so everything the script opens is opened from inside.</summary>
    private async Task<(int Status, string Stdout, string Stderr)> RunInAsync(Cgroup cgroup, string script)
    {
        var psi = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"read go; {script}");
        using var sh = System.Diagnostics.Process.Start(psi)!;
        try
        {
            cgroup.AddProcess(sh.Id);
            await sh.StandardInput.WriteLineAsync("go");
            sh.StandardInput.Close();
            var stdout = sh.StandardOutput.ReadToEndAsync();
            var stderr = sh.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await sh.WaitForExitAsync(timeout.Token);
            output.WriteLine($"in {cgroup.Path}: {script}: status {sh.ExitCode}, stdout {(await stdout).Trim()}, stderr {(await stderr).Trim()}");
            return (sh.ExitCode, await stdout, await stderr);
        }
        finally
        {
            if (!sh.HasExited)
            {
                sh.Kill(entireProcessTree: true);
            }
        }
    }

    /// <summary>Where the host mounts cgroup2 (<c>/sys/fs/cgroup</c> on a v2 host, <c>/sys/fs/cgroup/unified</c> on a
    /// hybrid one), or null.</summary>
    private static string? UnifiedMount() =>
        File.ReadLines("/proc/self/mountinfo")
            .Where(l => l.Contains(" - cgroup2 ", StringComparison.Ordinal))
            .Select(l => l.Split(' ')[4])
            .FirstOrDefault();

    private static void TryRemove(string dir)
    {
        try
        {
            Directory.Delete(dir);
        }
        catch (IOException)
        {
            // Another test's cgroup is still in it.
        }
    }
}
