using System.Text.Json.Nodes;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The instance process runs with the spec's user, capabilities, no_new_privs, rlimits and namespaces, applied by the
/// native constructor before .NET starts: checked from outside, in /proc of the task pid.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class IsolationTests(WasmShimFixture fx)
{
    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task User_groups_rlimit_and_no_new_privileges_show_in_proc_status_with_no_capabilities()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "user")).Args("sleep", "60");
        c.Process["user"] = new JsonObject
        {
            ["uid"] = 1000, ["gid"] = 1000, ["additionalGids"] = new JsonArray(2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007),
        };
        c.Process["rlimits"] = new JsonArray(
            new JsonObject { ["type"] = "RLIMIT_NOFILE", ["soft"] = 256, ["hard"] = 512 });
        c.Process["noNewPrivileges"] = true;
        var pid = await c.StartDetachedAsync();

        var status = Status(pid);
        Assert.Equal("1000\t1000\t1000\t1000", status["Uid"]);
        Assert.Equal("1000\t1000\t1000\t1000", status["Gid"]);
        Assert.Equal("2000 2001 2002 2003 2004 2005 2006 2007", status["Groups"]);
        Assert.Equal("0000000000000000", status["CapEff"]);
        Assert.Equal("0000000000000000", status["CapPrm"]);
        Assert.Equal("0000000000000000", status["CapBnd"]);
        Assert.Equal("1", status["NoNewPrivs"]);
        var nofile = File.ReadAllLines($"/proc/{pid}/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        Assert.Equal(["256", "512"], nofile.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3..5]);

        await c.DeleteAsync();
        AssertGone(pid);
    }

    [Fact]
    public async Task Capabilities_of_the_spec_are_the_task_s_sets()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "caps")).Args("sleep", "60");
        c.Process["capabilities"] = JsonNode.Parse("""
            {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE"],
             "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": [], "ambient": []}
            """);
        var pid = await c.StartDetachedAsync();

        // As runc leaves a root process after its execve: the permitted set is the bounding set (file capabilities of
        // root are full), the effective set follows it. AttackTests compares these sets with runc's directly.
        var status = Status(pid);
        Assert.Equal("0000000000000420", status["CapEff"]);
        Assert.Equal("0000000000000420", status["CapPrm"]);
        Assert.Equal("0000000000000420", status["CapBnd"]);
        Assert.Equal("0", status["NoNewPrivs"]);
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Namespaces_without_a_path_are_new_and_a_network_namespace_path_is_joined()
    {
        var netns = "wasm-test-" + Guid.NewGuid().ToString("N")[..8];
        await RunAsync("ip", "netns", "add", netns);
        try
        {
            await using var c = (await ConfigContainer.CreateAsync(fx, "ns")).Args("sleep", "60")
                .Namespace("pid").Namespace("ipc").Namespace("uts").Namespace("mount").Namespace("network", $"/run/netns/{netns}");
            c.Spec["hostname"] = "wasm-box";
            var pid = await c.StartDetachedAsync();

            Assert.Equal($"net:[{await InodeAsync($"/run/netns/{netns}")}]", Link(pid, "net"));
            foreach (var ns in new[] { "uts", "ipc", "mnt" })
            {
                Assert.NotEqual(Link(Environment.ProcessId, ns), Link(pid, ns));
            }
            // pid namespaces are not created (docs/architecture.md): a wasm guest has no process API.
            Assert.Equal(Link(Environment.ProcessId, "pid"), Link(pid, "pid"));
            await c.DeleteAsync();
            AssertGone(pid);
        }
        finally
        {
            await RunAsync("ip", "netns", "delete", netns);
        }
        Assert.False(File.Exists($"/run/netns/{netns}"));
    }

    [Fact]
    public async Task A_new_network_namespace_has_loopback_up()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "lo")).Args("sleep", "60").Namespace("network");
        var pid = await c.StartDetachedAsync();

        Assert.NotEqual(Link(Environment.ProcessId, "net"), Link(pid, "net"));
        var lo = await ProcessRunner.RunAsync("nsenter", [$"--net=/proc/{pid}/ns/net", "ip", "-o", "link", "show", "lo"], null, TimeSpan.FromSeconds(30));
        Assert.True(lo.Succeeded, lo.ToString());
        Assert.Contains(",UP,", lo.Stdout);
    }

    [Fact]
    public async Task A_namespace_path_that_does_not_exist_fails_create_naming_the_step()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "badns")).Args("echo", "never")
            .Namespace("network", "/run/netns/does-not-exist");
        var result = await c.RunAsync();
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("instance setup: open net namespace /run/netns/does-not-exist: No such file or directory", result.Stderr);
        Assert.Empty(await fx.Containerd.RunCtrAsync("task", "ls", "-q"));
    }

    [Fact]
    public async Task Default_ctr_spec_keeps_the_host_network_out_and_runs()
    {
        // ctr's default spec: new pid, ipc, uts, mount and network namespaces, proc/dev/sys mounts (skipped), caps.
        var id = WasmShimFixture.NewId("default");
        var result = await fx.RunAsync(fx.DemoImage, id, ["/wasi-demo-app.wasm", "echo", "ok"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("ok\n", result.Stdout);
    }

    // The instance process, and with it its private mount namespace and the namespaces it created, are gone.
    private static void AssertGone(int pid) => Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} is still there");

    private static Dictionary<string, string> Status(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status")
            .Select(l => l.Split(':', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim());

    private static string Link(int pid, string ns) => new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget ?? "";

    private static async Task<string> InodeAsync(string path) =>
        (await ProcessRunner.RunAsync("stat", ["-L", "-c", "%i", path], null, TimeSpan.FromSeconds(30))).Stdout.Trim();

    private static async Task RunAsync(string file, params string[] args)
    {
        var result = await ProcessRunner.RunAsync(file, args, null, TimeSpan.FromSeconds(30));
        Assert.True(result.Succeeded, $"{file} {string.Join(' ', args)}: {result}");
    }
}
