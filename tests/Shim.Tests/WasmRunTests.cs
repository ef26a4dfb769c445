using System.Diagnostics;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>End-to-end: the installed containerd-shim-wasmtime-v1 driven by a private containerd through ctr.</summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WasmRunTests(WasmShimFixture fx) : WasmRunCases<WasmShimFixture>(fx);

/// <summary>The end-to-end cases every wasm shim passes, run by one subclass per shim against its fixture.</summary>
public abstract class WasmRunCases<TFixture>(TFixture fx)
    where TFixture : WasmShimFixture
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    public async Task Env_from_ctr_reaches_the_program()
    {
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, WasmShimFixture.NewId("env"), [fx.EnvModule],
            ["--env", "GREETING=hello from env"]);
        Assert.True(result.Succeeded, result.ToString());
        var env = result.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("GREETING=hello from env", env);
        Assert.Contains("PATH=/bin", env);
    }

    [Fact]
    public async Task Custom_function_entrypoint_runs_that_export()
    {
        var result = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("func"), [Demo + "#hello"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello from custom entrypoint\n", result.Stdout);
    }

    [Fact]
    public async Task Bare_name_is_found_through_the_image_PATH_and_symlink()
    {
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, WasmShimFixture.NewId("path"), ["demo", "echo", "via", "PATH"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("via PATH\n", result.Stdout);
    }

    [Fact]
    public async Task Trap_is_a_nonzero_exit_with_the_trap_on_stderr()
    {
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, WasmShimFixture.NewId("trap"), [fx.TrapModule]);
        Assert.Equal(134, result.ExitCode);
        Assert.Contains("unreachable", result.Stderr);
    }

    [Fact]
    public async Task Sigkill_of_a_running_container_exits_137_and_ps_lists_the_instance_process()
    {
        var id = WasmShimFixture.NewId("kill");
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = fx.RunAsync(fx.DemoImage, id, [Demo, "daemon"], ct: cts.Token);

        var pid = await fx.Containerd.WaitForRunningPidAsync(id);
        // The task pid is a process of its own: the shim binary in its instance role, not the shim server.
        var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
        Assert.EndsWith(fx.ShimName, cmdline[0]);
        Assert.Equal("--instance", cmdline[1]);
        Assert.Equal(id, cmdline[2]);

        await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
        var result = await run;
        Assert.Equal(137, result.ExitCode);
        Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"instance process {pid} still exists");
        Assert.DoesNotContain(id, await fx.Containerd.RunCtrAsync("task", "ls"));
    }

    [Theory]
    [InlineData("SIGKILL", 137)]
    [InlineData("SIGTERM", 143)]
    public async Task Detached_container_is_killed_and_its_task_goes_away(string signal, int status)
    {
        var id = WasmShimFixture.NewId("detached");
        using var events = StartEvents();
        try
        {
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", fx.RuntimeName, fx.DemoImage, id, Demo, "daemon");
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            Assert.Contains("RUNNING", await TaskLineAsync(id));
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", signal, id);
            await WaitUntilAsync(async () => (await TaskLineAsync(id)).Contains("STOPPED"), "task STOPPED");
            // ctr task delete does not pass the status on; containerd's /tasks/exit event carries it.
            string? exit = null;
            await WaitUntilAsync(() =>
            {
                lock (events.Lines)
                {
                    exit = events.Lines.FirstOrDefault(l => l.Contains("/tasks/exit") && l.Contains(id));
                }
                return Task.FromResult(exit is not null);
            }, "a /tasks/exit event");
            Assert.Contains($"\"exit_status\":{status}", exit);
            await fx.Containerd.RunCtrAsync("task", "delete", id);
            Assert.DoesNotContain(id, await fx.Containerd.RunCtrAsync("task", "ls"));
            Assert.False(Directory.Exists($"/proc/{pid}/fd"));
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    [Theory]
    [InlineData("/missing.wasm", "no such file")]
    [InlineData("/readme.txt", "not a wasm module or wat file")]
    [InlineData("/invalid.wasm", "invalid wasm module")]
    [InlineData("/../../../etc/hostname", "escapes the rootfs")]
    // Symlinks resolve inside the rootfs, as the kernel would after a chroot: ".." stops at its root, "/" is its root.
    [InlineData("/up.wasm", "no such file in the rootfs (through the symlink /up.wasm -> ../../../../../etc/hostname")]
    [InlineData("/host.wasm", "no such file in the rootfs (through the symlink /host.wasm -> /etc/hostname")]
    public async Task Bad_entrypoint_fails_with_the_path_and_reason_and_leaves_nothing(string entrypoint, string reason)
    {
        var id = WasmShimFixture.NewId("bad");
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, id, [entrypoint]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(entrypoint, result.Stderr);
        Assert.Contains(reason, result.Stderr);
        await fx.Containerd.CtrAsync("container", "delete", id);
        await AssertNothingLeftAsync(id);

        // The shim machinery still serves the next container.
        var ok = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("after-bad"), [Demo, "echo", "still", "serving"]);
        Assert.Equal("still serving\n", ok.Stdout);
    }

    [Fact]
    public async Task Events_are_create_start_exit_delete_in_that_order()
    {
        var id = WasmShimFixture.NewId("events");
        using var events = StartEvents();
        await Task.Delay(500);
        var result = await fx.RunAsync(fx.DemoImage, id, [Demo, "echo", "hi"]);
        Assert.True(result.Succeeded, result.ToString());

        List<string> topics = [];
        await WaitUntilAsync(() =>
        {
            lock (events.Lines)
            {
                topics = events.Lines.Where(l => l.Contains(id) && l.Contains("/tasks/"))
                    .Select(l => l.Split(' ').First(w => w.StartsWith("/tasks/", StringComparison.Ordinal)))
                    .ToList();
            }
            return Task.FromResult(topics.Contains("/tasks/delete"));
        }, "a /tasks/delete event");
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], topics);
    }

    [Fact]
    public async Task After_run_rm_no_process_mount_socket_or_fifo_of_the_container_remains()
    {
        var id = WasmShimFixture.NewId("clean");
        var result = await fx.RunAsync(fx.DemoImage, id, [Demo, "echo", "bye"]);
        Assert.True(result.Succeeded, result.ToString());
        await AssertNothingLeftAsync(id);
    }

    private async Task AssertNothingLeftAsync(string id)
    {
        // The shim exits right after the last Delete; give it a moment.
        await WaitUntilAsync(() => Task.FromResult(HostScanner.ProcessesMentioning(id, except: " events").Count == 0), $"no process mentioning {id}",
            TimeSpan.FromSeconds(10), throwOnTimeout: false);
        Assert.Empty(HostScanner.ProcessesMentioning(id, except: " events"));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id));
        Assert.False(File.Exists(fx.Containerd.ShimSocketPath(fx.Containerd.Namespace, id)), "shim socket remains");
        var fifoDirs = new[] { "/run/containerd/fifo", Path.Combine(fx.Containerd.StateDir, "fifo") };
        foreach (var dir in fifoDirs.Where(Directory.Exists))
        {
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories), p => p.Contains(id));
        }
        Assert.False(Directory.Exists(Path.Combine(fx.Containerd.StateDir, "io.containerd.runtime.v2.task", fx.Containerd.Namespace, id)),
            "bundle remains");
    }

    private async Task<string> TaskLineAsync(string id) =>
        (await fx.Containerd.RunCtrAsync("task", "ls")).Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, bool throwOnTimeout = true)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < (timeout ?? TimeSpan.FromSeconds(30)))
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

    private EventStream StartEvents()
    {
        var psi = new ProcessStartInfo(fx.Containerd.CtrPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--address", fx.Containerd.Address, "--namespace", fx.Containerd.Namespace, "events" })
        {
            psi.ArgumentList.Add(a);
        }
        return new EventStream(Process.Start(psi)!);
    }

    /// <summary><c>ctr events</c> running in the background, its lines collected; killed on dispose.</summary>
    private sealed class EventStream : IDisposable
    {
        private readonly Process _process;

        public EventStream(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (Lines)
                    {
                        Lines.Add(line);
                    }
                }
            };
            _process.BeginOutputReadLine();
        }

        public List<string> Lines { get; } = [];

        public void Dispose()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            _process.Dispose();
        }
    }
}
