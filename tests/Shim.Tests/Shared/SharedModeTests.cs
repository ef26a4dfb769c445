using System.Diagnostics;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// Shared mode through containerd: <c>ctr run --runtime io.containerd.wasmtimed.v1</c> against the fixture's
/// <c>containerd-wasmtimed</c>, the same cases as normal mode plus what only shared mode has (one engine, one module
/// cache, kills that stop one instance of many in a process).
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeTests(SharedModeFixture fx)
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Echo_prints_its_args_and_the_task_pid_is_the_daemon()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("echo"), [Demo, "echo", "hello", "shared"]);
        Assert.True(result.Succeeded, result + fx.DaemonLog());
        Assert.Equal("hello shared\n", result.Stdout);
        Assert.Contains("exiting", result.Stderr);
    }

    [Fact]
    public async Task Exit_code_of_the_program_is_the_task_exit_status()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("exit"), [Demo, "exit", "42"]);
        Assert.Equal(42, result.ExitCode);
    }

    [Fact]
    public async Task Env_from_ctr_reaches_the_program()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("env"), ["/env.wat"], ["--env", "GREETING=hello from env"]);
        Assert.True(result.Succeeded, result + fx.DaemonLog());
        var env = result.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("GREETING=hello from env", env);
        Assert.Contains("PATH=/bin", env);
    }

    [Fact]
    public async Task Custom_function_entrypoint_runs_that_export()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("func"), [Demo + "#hello"]);
        Assert.True(result.Succeeded, result + fx.DaemonLog());
        Assert.Equal("hello from custom entrypoint\n", result.Stdout);
    }

    [Fact]
    public async Task Trap_is_status_134_with_the_trap_on_stderr_and_the_daemon_keeps_serving()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("trap"), ["/trap.wat"]);
        Assert.Equal(134, result.ExitCode);
        Assert.Contains("unreachable", result.Stderr);
        var after = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("after-trap"), [Demo, "echo", "still", "here"]);
        Assert.Equal("still here\n", after.Stdout);
    }

    [Theory]
    [InlineData("/missing.wasm", "no such file")]
    [InlineData("/readme.txt", "not a wasm module or wat file")]
    public async Task Bad_entrypoint_fails_create_with_the_path_and_reason(string entrypoint, string reason)
    {
        var id = NewId("bad");
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, id, [entrypoint]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(entrypoint, result.Stderr);
        Assert.Contains(reason, result.Stderr);
        await fx.Containerd.CtrAsync("container", "delete", id);
    }

    [Fact]
    public async Task Poll_oneoff_with_more_subscriptions_than_the_bound_is_refused_and_the_daemon_keeps_serving()
    {
        var result = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("poll-many"), ["/poll-many.wat"]);
        Assert.True(result.ExitCode == 28, $"4,096 subscriptions must be served and 4,097 refused with EINVAL (28): {result}");
        var after = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("after-poll"), [Demo, "echo", "still", "here"]);
        Assert.Equal("still here\n", after.Stdout);
    }

    [Fact]
    public async Task A_second_container_of_the_same_module_compiles_nothing()
    {
        var first = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("cache1"), [Demo, "echo", "one"]);
        Assert.True(first.Succeeded, first + fx.DaemonLog());
        var before = (await fx.StatusAsync()).Compilations;
        var second = await fx.RunAsync(SharedModeFixture.TestImageName, NewId("cache2"), [Demo, "echo", "two"]);
        Assert.True(second.Succeeded, second + fx.DaemonLog());
        var after = await fx.StatusAsync();
        Assert.Equal(before, after.Compilations);
        Assert.True(after.CachedModules >= 1);
    }

    [Theory]
    [Trait("Tier", "Smoke")]
    [InlineData("SIGKILL", 137)]
    [InlineData("SIGTERM", 143)]
    public async Task Kill_of_a_running_container_ends_it_with_128_plus_the_signal(string signal, int status)
    {
        var id = NewId("kill");
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = fx.RunAsync(SharedModeFixture.TestImageName, id, [Demo, "daemon"], ct: cts.Token);
        await WaitForRunningAsync(id);
        // The task pid is the daemon's: every shared-mode container lives in it.
        var ps = await fx.Containerd.RunCtrAsync("task", "ps", id);
        Assert.Contains(fx.DaemonPid.ToString(System.Globalization.CultureInfo.InvariantCulture), ps);
        await fx.Containerd.RunCtrAsync("task", "kill", "-s", signal, id);
        var result = await run;
        Assert.Equal(status, result.ExitCode);
        Assert.True(fx.DaemonPid > 0, "the daemon died with its container");
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task A_spinning_and_an_hour_sleeping_guest_are_killed_promptly_while_ten_others_keep_running()
    {
        var others = Enumerable.Range(0, 10).Select(i => NewId($"bystander{i}")).ToList();
        var spin = NewId("spin");
        var sleep = NewId("sleep");
        try
        {
            foreach (var id in others)
            {
                await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "daemon");
            }
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, spin, "/spin.wat");
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, sleep, Demo, "sleep", "3600");
            await WaitForRunningAsync(spin);
            await WaitForRunningAsync(sleep);
            await Task.Delay(500);

            foreach (var id in new[] { spin, sleep })
            {
                var watch = Stopwatch.StartNew();
                await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
                await WaitUntilAsync(async () => (await TaskLineAsync(id)).Contains("STOPPED"), $"{id} STOPPED", TimeSpan.FromSeconds(30));
                // Generous: the 1 s target is a benchmark figure; this only catches a kill that waits for the guest.
                Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"{id} took {watch.Elapsed} to stop");
            }
            foreach (var id in others)
            {
                Assert.Contains("RUNNING", await TaskLineAsync(id));
            }
        }
        finally
        {
            foreach (var id in others.Append(spin).Append(sleep))
            {
                await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
            }
            foreach (var id in others.Append(spin).Append(sleep))
            {
                await WaitUntilAsync(async () => !(await TaskLineAsync(id)).Contains("RUNNING"), $"{id} stopped", TimeSpan.FromSeconds(30), throwOnTimeout: false);
                await fx.Containerd.CtrAsync("task", "delete", id);
                await fx.Containerd.CtrAsync("container", "delete", id);
            }
        }
    }

    [Fact]
    public async Task After_every_container_is_removed_the_daemon_holds_no_sandbox_socket_or_fifo()
    {
        var ids = Enumerable.Range(0, 3).Select(i => NewId($"leak{i}")).ToList();
        await Task.WhenAll(ids.Select(id => fx.RunAsync(SharedModeFixture.TestImageName, id, [Demo, "echo", id])));
        // Other tests of the collection run one at a time, so nothing else is in the daemon now.
        await WaitUntilAsync(async () => (await fx.StatusAsync()).Sandboxes == 0, "no sandbox left", TimeSpan.FromSeconds(20), throwOnTimeout: false);
        var status = await fx.StatusAsync();
        Assert.True(status.Sandboxes == 0, $"sandboxes left: {string.Join(", ", status.Sockets)}\n{fx.DaemonLog()}");
        Assert.Equal(0u, status.Tasks);
        Assert.Equal(0u, status.RunningInstances);
        Assert.Empty(Directory.EnumerateFileSystemEntries(fx.SandboxSocketDir));
        var open = Directory.EnumerateFileSystemEntries($"/proc/{fx.DaemonPid}/fd")
            .Select(fd => { try { return new FileInfo(fd).LinkTarget ?? ""; } catch (IOException) { return ""; } })
            .ToList();
        Assert.DoesNotContain(open, target => target.Contains(fx.Containerd.WorkDir, StringComparison.Ordinal));
    }

    internal static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private async Task WaitForRunningAsync(string id) =>
        await WaitUntilAsync(async () => (await TaskLineAsync(id)).Contains("RUNNING"), $"{id} RUNNING");

    private async Task<string> TaskLineAsync(string id) =>
        (await fx.Containerd.RunCtrAsync("task", "ls")).Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, bool throwOnTimeout = true)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < (timeout ?? TimeSpan.FromSeconds(60)))
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(100);
        }
        if (throwOnTimeout)
        {
            throw new TimeoutException($"timed out waiting for {what}");
        }
    }
}
