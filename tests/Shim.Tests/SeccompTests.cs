using System.Text.Json.Nodes;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// <c>linux.seccomp</c> of wasm containers, through containerd 1.6: ctr's default profile confines every thread of
/// the instance process and the demo still runs under it; hostile profiles act on the guest's own system calls as
/// they do under runc (the same profile file, busybox through <c>io.containerd.runc.v2</c>); profiles the shim cannot
/// honour fail Create, naming the field, with nothing left running.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SeccompTests(WasmShimFixture fx) : IAsyncLifetime
{
    private const string Runc = "io.containerd.runc.v2";
    private const int SigsysDeath = 128 + 31;

    private readonly string _dir = Directory.CreateTempSubdirectory("seccomp-tests-").FullName;

    public async Task InitializeAsync() => await fx.Containerd.ImportAsync((await TestImages.BuildBusyboxAsync()).TarPath);

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task The_default_profile_filters_every_thread_of_the_instance_and_echo_still_works()
    {
        var id = WasmShimFixture.NewId("seccomp-default");
        try
        {
            await fx.Containerd.RunCtrAsync(["run", "-d", "--runtime", WasmShimFixture.Runtime, "--seccomp", fx.DemoImage, id,
                "/wasi-demo-app.wasm", "daemon"], TimeSpan.FromSeconds(90));
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            // Installed by the instance right after the start byte, so just after Start has answered.
            var expected = OwnFilters() + 1;
            await WaitForAsync(() => Status(pid).GetValueOrDefault("Seccomp_filters") == expected.ToString(), $"task {pid} filtered");

            var threads = Directory.GetDirectories($"/proc/{pid}/task");
            Assert.True(threads.Length > 1, $"the instance process has {threads.Length} thread(s): a .NET process has several");
            foreach (var thread in threads)
            {
                var status = StatusOf(Path.Combine(thread, "status"));
                Assert.Equal(("2", expected.ToString()), (status["Seccomp"], status["Seccomp_filters"]));
            }
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }

        var echo = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("seccomp-echo"), ["/wasi-demo-app.wasm", "echo", "under", "seccomp"], ["--seccomp"]);
        Assert.True(echo.Succeeded, echo.ToString());
        Assert.Equal("under seccomp\n", echo.Stdout);
    }

    [Fact]
    public async Task Without_a_profile_the_instance_is_not_filtered()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "seccomp-none")).Args("sleep", "60");
        var pid = await c.StartDetachedAsync();
        await Task.Delay(500);
        Assert.Equal(OwnFilters().ToString(), Status(pid)["Seccomp_filters"]);
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task A_profile_refusing_writes_to_stdout_silences_the_guest_as_runc_silences_busybox()
    {
        var profile = WriteProfile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write", "writev", "pwrite64", "pwritev", "pwritev2"],
              "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}
            """);

        var wasm = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("seccomp-mute"), ["/wasi-demo-app.wasm", "echo", "hi"],
            ["--seccomp", "--seccomp-profile", profile]);
        var runc = await RuncAsync(WasmShimFixture.NewId("seccomp-mute-runc"), profile, ["echo", "hi"]);

        Assert.Equal("", wasm.Stdout);
        Assert.Equal("", runc.Stdout);
        // fd 2 is untouched: the demo's closing line and busybox's complaint, EPERM, both arrive.
        Assert.Contains("exiting", wasm.Stderr);
        Assert.Contains("Operation not permitted", runc.Stderr);
    }

    [Fact]
    public async Task A_profile_that_kills_on_the_guest_s_sleep_ends_the_task_by_sigsys_as_under_runc()
    {
        // busybox sleeps in clock_nanosleep. Wasmtime sleeps on a timer of its tokio runtime: that thread waits in
        // epoll_wait with the timer's timeout (argument 3, an int) while the guest's thread waits for it. The same
        // thread also wakes for the guest's stdio and then waits with timeout -1, so only a timeout in [0, 2^31)
        // is a sleep: the mask tests the int's sign bit.
        var profile = WriteProfile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["nanosleep", "clock_nanosleep"], "action": "SCMP_ACT_KILL_PROCESS"},
              {"names": ["epoll_wait", "epoll_pwait"], "action": "SCMP_ACT_KILL_PROCESS",
               "args": [{"index": 3, "value": 2147483648, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}
            """);

        var wasm = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("seccomp-kill"), ["/wasi-demo-app.wasm", "sleep", "1"],
            ["--seccomp", "--seccomp-profile", profile]);
        var runc = await RuncAsync(WasmShimFixture.NewId("seccomp-kill-runc"), profile, ["sleep", "1"]);

        Assert.True(runc.ExitCode == SigsysDeath, $"runc: {runc}");
        Assert.True(wasm.ExitCode == SigsysDeath, $"wasm: {wasm}");

        // The same profile lets a program that does not sleep run to its end: the kill was the sleep's.
        var wasmExit = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("seccomp-nokill"), ["/wasi-demo-app.wasm", "exit", "3"],
            ["--seccomp", "--seccomp-profile", profile]);
        var runcExit = await RuncAsync(WasmShimFixture.NewId("seccomp-nokill-runc"), profile, ["sh", "-c", "exit 3"]);
        Assert.True(runcExit.ExitCode == 3, $"runc: {runcExit}");
        Assert.True(wasmExit.ExitCode == 3, $"wasm: {wasmExit}");
    }

    public static TheoryData<string, string> Unsupported => new()
    {
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}""",
            "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported"
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getpid"], "action": "SCMP_ACT_SHRUG"}]}""",
            "linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_SHRUG\""
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}""",
            "linux.seccomp.syscalls[0].args[0].op: unknown comparison \"SCMP_CMP_ABOUT\""
        },
    };

    [Theory]
    [MemberData(nameof(Unsupported))]
    public async Task A_profile_the_shim_cannot_honour_fails_create_naming_the_field_and_leaves_nothing_running(string seccomp, string message)
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "seccomp-bad")).Args("echo", "never");
        c.Spec["linux"]!["seccomp"] = JsonNode.Parse(seccomp);

        var result = await c.RunAsync();

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains(message, result.Stderr);
        Assert.DoesNotContain("never", result.Stdout);
        Assert.Empty(await fx.Containerd.RunCtrAsync("task", "ls", "-q"));
        Assert.Empty(InstanceProcessesOf(c.Id));
    }

    private string WriteProfile(string json)
    {
        var path = Path.Combine(_dir, $"{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private async Task<ProcessResult> RuncAsync(string id, string profile, string[] args)
    {
        try
        {
            return await fx.Containerd.CtrAsync(
                ["run", "--rm", "--runtime", Runc, "--seccomp", "--seccomp-profile", profile, KnownImages.BusyboxName, id, .. args],
                TimeSpan.FromSeconds(90));
        }
        finally
        {
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    // The test host may run under filters of its own, which every process it starts inherits.
    private static int OwnFilters() => int.Parse(StatusOf("/proc/self/status").GetValueOrDefault("Seccomp_filters", "0"));

    private static Dictionary<string, string> Status(int pid) => StatusOf($"/proc/{pid}/status");

    private static Dictionary<string, string> StatusOf(string path) =>
        File.ReadAllLines(path)
            .Select(l => l.Split(':', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim());

    /// <summary>Processes started as the instance of container <paramref name="id"/>, whatever their state.</summary>
    private static List<int> InstanceProcessesOf(string id)
    {
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }
            try
            {
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Length > 2 && argv[1] == "--instance" && argv[2] == id)
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
                // Gone while we looked.
            }
        }
        return found;
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for: {what}");
            await Task.Delay(50);
        }
    }
}
