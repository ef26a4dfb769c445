using System.Diagnostics;
using Containerd.Api.Client;
using Containerd.Services.Tasks.V1;
using Containerd.Testing;
using Grpc.Core;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// One private containerd for the Linux-container tests: the installed wasm shim on its PATH, and busybox, a busybox
/// image with a script, and the wasm demo imported.
/// </summary>
public sealed class LinuxContainerFixture : IAsyncLifetime
{
    /// <summary>busybox plus <c>/hello.sh</c> (a <c>#!/bin/sh</c> script) and <c>/busybox.noexec</c> (an ELF without an execute bit).</summary>
    public const string ScriptImage = "localhost/runwasi-dotnet/linux-tests:latest";

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    private readonly string _cacheDir = Directory.CreateTempSubdirectory("wasmtime-cache-").FullName;

    public async Task InitializeAsync()
    {
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = await ShimBinary.DirAsync(),
            Environment = new Dictionary<string, string> { ["CONTAINERD_SHIM_WASMTIME_CACHE"] = _cacheDir },
        });
        await Containerd.ImportAsync((await TestImages.BuildBusyboxAsync()).TarPath);
        await Containerd.ImportAsync((await TestImages.BuildDemoAsync()).TarPath);
        await Containerd.ImportAsync((await TestImages.BuildPauseAsync()).TarPath);
        var busybox = KnownImages.Busybox(TestImages.BusyboxBinaryPath, ScriptImage);
        var scripts = new ImageDefinition
        {
            Name = ScriptImage,
            Platform = busybox.Platform,
            Config = busybox.Config,
            Layers =
            [
                .. busybox.Layers,
                new FilesystemLayer(
                [
                    LayerEntry.Bytes("hello.sh", "#!/bin/sh\necho \"script says $1\"\n"u8.ToArray(), Modes.Executable),
                    LayerEntry.File("busybox.noexec", TestImages.BusyboxBinaryPath, (UnixFileMode)0b110_100_100),
                ]),
            ],
        };
        await Containerd.ImportAsync(TestImages.Build("linux-tests", scripts).TarPath);
    }

    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
        Directory.Delete(_cacheDir, recursive: true);
    }
}

/// <summary>The tests that share one <see cref="LinuxContainerFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class LinuxContainerCollection : ICollectionFixture<LinuxContainerFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "linux containers";
}

/// <summary>
/// End-to-end through containerd and ctr: a container whose <c>args[0]</c> is a Linux executable in its rootfs, run
/// with <c>--runtime io.containerd.wasmtime.v1</c>, is run by runc with containerd's runc-shim semantics.
/// </summary>
[Collection(LinuxContainerCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LinuxContainerTests(LinuxContainerFixture fx)
{
    private const string Runtime = WasmShimFixture.Runtime;
    private const string Busybox = KnownImages.BusyboxName;
    private const string RuncStateBase = "/run/containerd/wasmtime-runc";

    private ContainerdFixture Ctrd => fx.Containerd;

    private Task<ProcessResult> RunAsync(string image, string id, IEnumerable<string> args, IEnumerable<string>? options = null) =>
        Ctrd.CtrAsync(new[] { "run", "--rm", "--runtime", Runtime }.Concat(options ?? []).Concat([image, id]).Concat(args),
            TimeSpan.FromSeconds(90));

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Busybox_echo_runs_natively_through_runc_and_leaves_nothing()
    {
        var id = WasmShimFixture.NewId("bb-echo");
        var result = await RunAsync(Busybox, id, ["echo", "hello"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
        await AssertNothingLeftAsync(id);
    }

    [Fact]
    public async Task Exit_code_of_the_program_is_the_task_exit_code()
    {
        var result = await RunAsync(Busybox, WasmShimFixture.NewId("bb-exit"), ["sh", "-c", "echo out; echo err >&2; exit 7"]);
        Assert.Equal(7, result.ExitCode);
        Assert.Equal("out\n", result.Stdout);
        Assert.Contains("err", result.Stderr);
    }

    [Fact]
    public async Task Shebang_script_runs_through_runc()
    {
        var result = await RunAsync(LinuxContainerFixture.ScriptImage, WasmShimFixture.NewId("script"), ["/hello.sh", "hi"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("script says hi\n", result.Stdout);
    }

    [Fact]
    public async Task Elf_without_an_execute_bit_is_not_a_Linux_container()
    {
        var result = await RunAsync(LinuxContainerFixture.ScriptImage, WasmShimFixture.NewId("noexec"), ["/busybox.noexec", "echo", "x"]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/busybox.noexec", result.Stderr);
        Assert.Contains("not a wasm module", result.Stderr);
    }

    [Fact]
    public async Task Large_output_is_complete_when_the_container_exits_right_after()
    {
        // About 1.3 MB, far more than a pipe buffer, written as fast as the shell can and followed at once by the exit.
        const int lines = 60000;
        var result = await RunAsync(Busybox, WasmShimFixture.NewId("bb-big"),
            ["sh", "-c", $"i=0; while [ $i -lt {lines} ]; do echo \"line $i of the output\"; i=$((i+1)); done"]);
        Assert.True(result.Succeeded, result.ToString()[..Math.Min(500, result.ToString().Length)]);
        var got = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines, got.Length);
        Assert.Equal("line 0 of the output", got[0]);
        Assert.Equal($"line {lines - 1} of the output", got[^1]);
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Sigkill_exits_137_and_the_task_pid_is_the_container_init_adopted_by_the_shim()
    {
        var id = WasmShimFixture.NewId("bb-kill");
        try
        {
            var run = RunAsync(Busybox, id, ["sleep", "1000"]);
            var pid = await Ctrd.WaitForRunningPidAsync(id);

            // The init of its own pid namespace (runc made it), and a child of the shim since runc create exited.
            var status = File.ReadAllLines($"/proc/{pid}/status");
            Assert.Contains(status, l => l.StartsWith("NSpid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1] == "1");
            var ppid = status.First(l => l.StartsWith("PPid:", StringComparison.Ordinal)).Split('\t')[1];
            Assert.EndsWith(ShimBinary.Name, File.ReadAllText($"/proc/{ppid}/cmdline").Split('\0')[0]);
            Assert.True(Directory.Exists(Path.Combine(RuncStateBase, Ctrd.Namespace, id)), "runc state of the container");

            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            Assert.Equal(137, (await run).ExitCode);
            Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"init process {pid} still exists");
            await AssertNothingLeftAsync(id);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Sigterm_reaches_an_init_that_handles_it_and_exits_143()
    {
        var id = WasmShimFixture.NewId("bb-term");
        try
        {
            // As under containerd's runc shim, the init of a pid namespace only gets the signals it handles (and
            // SIGKILL): a bare `sleep` would ignore SIGTERM, so the shell traps it.
            var run = RunAsync(Busybox, id, ["sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"]);
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            // The trap is set once the shell has started its child.
            await WaitUntilAsync(() => Task.FromResult(ChildrenOf(pid).Count == 1), "the sleep");
            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGTERM", id);
            Assert.Equal(143, (await run).ExitCode);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Kill_all_signals_every_process_of_the_container()
    {
        var id = WasmShimFixture.NewId("bb-all");
        try
        {
            var run = RunAsync(Busybox, id, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            await WaitUntilAsync(() => Task.FromResult(ChildrenOf(pid).Count == 2), "the two sleeps");
            var children = ChildrenOf(pid);
            await Ctrd.RunCtrAsync("task", "kill", "--all", "-s", "SIGKILL", id);
            Assert.Equal(137, (await run).ExitCode);
            Assert.All(children, c => Assert.False(Directory.Exists($"/proc/{c}/fd"), $"process {c} still exists"));
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Processes_left_by_the_init_in_a_shared_pid_namespace_die_with_it()
    {
        // A container that joins a pid namespace (a pod's, or here the host's) keeps its other processes when its
        // init dies, and they hold its stdout: containerd would wait for EOF on that FIFO forever. The shim kills
        // them with the init, as containerd's runc shim does.
        var id = WasmShimFixture.NewId("bb-sharedpid");
        try
        {
            var run = RunAsync(Busybox, id, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], ["--with-ns", $"pid:/proc/{Environment.ProcessId}/ns/pid"]);
            var started = Ctrd.WaitForRunningPidAsync(id);
            if (await Task.WhenAny(started, run) == run)
            {
                Assert.Fail($"ctr run ended before the task ran: {await run}");
            }
            var pid = await started;
            await WaitUntilAsync(() => Task.FromResult(ChildrenOf(pid).Count == 2), "the two sleeps");
            var children = ChildrenOf(pid);
            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            Assert.Equal(137, (await run.WaitAsync(TimeSpan.FromSeconds(60))).ExitCode);
            Assert.All(children, c => Assert.False(Directory.Exists($"/proc/{c}/fd"), $"process {c} still exists"));
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Wasm_and_busybox_containers_run_side_by_side()
    {
        var linux = WasmShimFixture.NewId("side-linux");
        var wasm = WasmShimFixture.NewId("side-wasm");
        try
        {
            var linuxRun = RunAsync(Busybox, linux, ["sleep", "1000"]);
            var wasmRun = RunAsync(KnownImages.DemoName, wasm, ["/wasi-demo-app.wasm", "daemon"]);
            var linuxPid = await Ctrd.WaitForRunningPidAsync(linux);
            var wasmPid = await Ctrd.WaitForRunningPidAsync(wasm);
            Assert.Contains("sleep", File.ReadAllText($"/proc/{linuxPid}/cmdline"));
            Assert.Contains("--instance", File.ReadAllText($"/proc/{wasmPid}/cmdline"));

            var echo = await RunAsync(Busybox, WasmShimFixture.NewId("side-echo"), ["echo", "beside"]);
            Assert.Equal("beside\n", echo.Stdout);
            var demo = await RunAsync(KnownImages.DemoName, WasmShimFixture.NewId("side-demo"), ["/wasi-demo-app.wasm", "echo", "wasm"]);
            Assert.Equal("wasm\n", demo.Stdout);

            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", linux);
            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", wasm);
            Assert.Equal(137, (await linuxRun).ExitCode);
            Assert.Equal(137, (await wasmRun).ExitCode);
        }
        finally
        {
            await CleanUpAsync(linux);
            await CleanUpAsync(wasm);
        }
        await AssertNothingLeftAsync(linux);
        await AssertNothingLeftAsync(wasm);
    }

    [Fact]
    public async Task Tasks_Update_changes_the_limits_through_runc_update()
    {
        var id = WasmShimFixture.NewId("bb-update");
        using var client = new ContainerdClient(Ctrd.Address, Ctrd.Namespace);
        try
        {
            var run = RunAsync(Busybox, id, ["sleep", "1000"]);
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"pids":{"limit":42},"memory":{"limit":67108864}}"""),
            });
            Assert.Equal("42", ReadCgroupFile(pid, "pids", "pids.max"));
            var pureV2 = File.Exists("/sys/fs/cgroup/cgroup.controllers");
            Assert.Equal("67108864", ReadCgroupFile(pid, "memory", pureV2 ? "memory.max" : "memory.limit_in_bytes"));

            // runc's own complaint comes back, with the container named.
            var bad = await Assert.ThrowsAsync<RpcException>(async () => await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"pids":{"limit":"many"}}"""),
            }));
            Assert.Contains(id, bad.Status.Detail);
            Assert.Contains("cannot unmarshal", bad.Status.Detail);

            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            Assert.Equal(137, (await run).ExitCode);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Ctr_task_metrics_reads_the_cgroup_runc_made()
    {
        var id = WasmShimFixture.NewId("bb-metrics");
        const int limit = 96 << 20;
        try
        {
            var run = RunAsync(Busybox, id, ["sleep", "1000"], ["--memory-limit", limit.ToString()]);
            await Ctrd.WaitForRunningPidAsync(id);
            var text = await Ctrd.RunCtrAsync("task", "metrics", id);
            // ctr prints "memory.usage_in_bytes <n>" (v1) or "memory.usage <n>" (v2) lines, and the limit.
            var usage = text.Split('\n').Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                .FirstOrDefault(f => f.Length == 2 && f[0] is "memory.usage_in_bytes" or "memory.usage");
            Assert.True(usage is not null, text);
            Assert.True(ulong.Parse(usage[1]) > 0, $"memory usage is {usage[1]}");
            Assert.Contains(limit.ToString(), text);
            await Ctrd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            Assert.Equal(137, (await run).ExitCode);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Oom_kill_in_a_runc_container_is_published_as_tasks_oom()
    {
        var id = WasmShimFixture.NewId("bb-oom");
        var events = StartEvents();
        try
        {
            await Task.Delay(300);
            // tail keeps every line of an endless stream without a newline in memory: the 16 MiB limit kills it.
            var result = await RunAsync(Busybox, id, ["sh", "-c", "tail /dev/zero"], ["--memory-limit", (16 << 20).ToString()]);
            Assert.Equal(137, result.ExitCode);
            await WaitUntilAsync(() => Task.FromResult(events.Lines().Any(l => l.Contains("/tasks/oom") && l.Contains(id))), "a /tasks/oom event");
        }
        finally
        {
            events.Dispose();
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Oom_kill_of_a_child_is_published_while_the_container_keeps_running()
    {
        // The shell survives (the OOM killer picks the bigger tail), so only the kernel's notification, not the
        // exit path's last look, can publish the kill while the task is still RUNNING.
        var id = WasmShimFixture.NewId("bb-oom-child");
        var events = StartEvents();
        try
        {
            await Task.Delay(300);
            await Ctrd.RunCtrAsync("run", "-d", "--runtime", Runtime, "--memory-limit", (16 << 20).ToString(),
                Busybox, id, "sh", "-c", "tail /dev/zero; sleep 600");
            await WaitUntilAsync(() => Task.FromResult(events.Lines().Any(l => l.Contains("/tasks/oom") && l.Contains(id))), "a /tasks/oom event");
            Assert.Equal("RUNNING", (await Ctrd.TaskAsync(id))?.Status);
        }
        finally
        {
            events.Dispose();
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Pause_container_runs_until_sigterm_and_exits_0()
    {
        var id = WasmShimFixture.NewId("pause");
        try
        {
            // The sandbox container of every pod: a static binary that handles SIGTERM as its pid-namespace init.
            var run = RunAsync(KnownImages.PauseName, id, []);
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            Assert.Equal("pause", File.ReadAllText($"/proc/{pid}/comm").Trim());
            await Ctrd.RunCtrAsync("task", "kill", id);
            var result = await run;
            Assert.Equal(0, result.ExitCode);
            await AssertNothingLeftAsync(id);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task After_the_shim_is_killed_its_delete_action_removes_the_runc_container()
    {
        var id = WasmShimFixture.NewId("bb-orphan");
        try
        {
            await Ctrd.RunCtrAsync("run", "-d", "--runtime", Runtime, Busybox, id, "sleep", "1000");
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            var shim = int.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal)).Split('\t')[1]);
            Assert.EndsWith(ShimBinary.Name, File.ReadAllText($"/proc/{shim}/cmdline").Split('\0')[0]);

            // containerd notices the dead shim and runs `containerd-shim-wasmtime-v1 delete` for the task, which kills
            // the init and has runc delete the container.
            Process.GetProcessById(shim).Kill();
            var state = Path.Combine(RuncStateBase, Ctrd.Namespace, id);
            await WaitUntilAsync(() => Task.FromResult(!IsRunning(pid) && !Directory.Exists(state)), $"init {pid} and {state} gone");
            await Ctrd.CtrAsync("task", "delete", "--force", id);
            await Ctrd.RunCtrAsync("container", "delete", id);
            await AssertNothingLeftAsync(id, shimExitedCleanly: false);
        }
        finally
        {
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task After_a_shim_crash_delete_kills_the_container_and_not_the_process_init_pid_names()
    {
        var id = WasmShimFixture.NewId("bb-crash");
        using var bystander = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            await Ctrd.RunCtrAsync("run", "-d", "--runtime", Runtime, Busybox, id, "sleep", "1000");
            var pid = await Ctrd.WaitForRunningPidAsync(id);
            var shim = ShimDeleteTests.ParentOf(pid);
            Assert.EndsWith(ShimBinary.Name, File.ReadAllText($"/proc/{shim}/cmdline").Split('\0')[0]);
            var bundle = Path.Combine(Ctrd.StateDir, "io.containerd.runtime.v2.task", Ctrd.Namespace, id);
            File.WriteAllText(Path.Combine(bundle, "init.pid"), bystander.Id.ToString());

            Process.GetProcessById(shim).Kill();
            var state = Path.Combine(RuncStateBase, Ctrd.Namespace, id);
            await WaitUntilAsync(() => Task.FromResult(!IsRunning(pid) && !Directory.Exists(state)), $"init {pid} and {state} gone");
            await Ctrd.CtrAsync("task", "delete", "--force", id);
            await Ctrd.RunCtrAsync("container", "delete", id);

            Assert.False(bystander.HasExited, "shim delete killed the unrelated process named in init.pid");
            await AssertNothingLeftAsync(id, shimExitedCleanly: false);
        }
        finally
        {
            bystander.Kill();
            await CleanUpAsync(id);
        }
    }

    [Fact]
    public async Task Runc_failure_fails_create_with_runc_own_message_and_leaves_nothing()
    {
        var id = WasmShimFixture.NewId("bb-bad");
        // A propagation mode runc does not know: containerd passes it through, runc create refuses the spec.
        var result = await RunAsync(Busybox, id, ["echo", "never"], ["--rootfs-propagation", "sideways"]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain("never", result.Stdout);
        Assert.Contains("runc create failed", result.Stderr);
        Assert.Contains("sideways", result.Stderr);
        Assert.Contains(id, result.Stderr);
        await Ctrd.CtrAsync("container", "delete", id);
        await AssertNothingLeftAsync(id);
    }

    private async Task AssertNothingLeftAsync(string id, bool shimExitedCleanly = true)
    {
        // The shim exits right after the last Delete; give it a moment.
        await WaitUntilAsync(() => Task.FromResult(HostScanner.ProcessesMentioning(id, except: " events").Count == 0), $"no process mentioning {id}",
            TimeSpan.FromSeconds(10), throwOnTimeout: false);
        Assert.Empty(HostScanner.ProcessesMentioning(id, except: " events"));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id));
        Assert.False(Directory.Exists(Path.Combine(RuncStateBase, Ctrd.Namespace, id)), "runc state remains");
        Assert.Empty(CgroupsOf(id));
        if (shimExitedCleanly)
        {
            // A killed shim cannot remove its socket, whatever its containers were.
            Assert.False(File.Exists(Ctrd.ShimSocketPath(Ctrd.Namespace, id)), "shim socket remains");
        }
        Assert.False(Directory.Exists(Path.Combine(Ctrd.StateDir, "io.containerd.runtime.v2.task", Ctrd.Namespace, id)), "bundle remains");
    }

    /// <summary>The container's cgroup folders (ctr's cgroupsPath is /&lt;namespace&gt;/&lt;id&gt;) in every hierarchy.</summary>
    private List<string> CgroupsOf(string id)
    {
        const string root = "/sys/fs/cgroup";
        var hierarchies = File.Exists(Path.Combine(root, "cgroup.controllers"))
            ? [root]
            : Directory.EnumerateDirectories(root).Where(d => new FileInfo(d).LinkTarget is null).Append(root);
        return hierarchies.Select(h => Path.Combine(h, Ctrd.Namespace, id)).Where(Directory.Exists).ToList();
    }

    private async Task CleanUpAsync(string id)
    {
        await Ctrd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
        await Ctrd.CtrAsync("task", "delete", "--force", id);
        await Ctrd.CtrAsync("container", "delete", id);
    }

    private CtrEvents StartEvents() => new(Ctrd);

    /// <summary><c>ctr events</c> in the background, its lines collected; killed on dispose.</summary>
    private sealed class CtrEvents : IDisposable
    {
        private readonly Process _process;
        private readonly List<string> _lines = [];

        public CtrEvents(ContainerdFixture containerd)
        {
            var psi = new ProcessStartInfo(containerd.CtrPath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "--address", containerd.Address, "--namespace", containerd.Namespace, "events" })
            {
                psi.ArgumentList.Add(a);
            }
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (_lines)
                    {
                        _lines.Add(line);
                    }
                }
            };
            _process.BeginOutputReadLine();
        }

        public List<string> Lines()
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }

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

    /// <summary>A control file of the cgroup <paramref name="pid"/> is in, on cgroup v1 (this host) or v2.</summary>
    private static string ReadCgroupFile(int pid, string controller, string file)
    {
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts[1].Split(',').Contains(controller))
            {
                return File.ReadAllText($"/sys/fs/cgroup/{parts[1]}{parts[2]}/{file}").Trim();
            }
            if (parts[0] == "0" && parts[1].Length == 0 && File.Exists($"/sys/fs/cgroup{parts[2]}/{file}"))
            {
                return File.ReadAllText($"/sys/fs/cgroup{parts[2]}/{file}").Trim();
            }
        }
        throw new InvalidOperationException($"process {pid} has no {controller} cgroup: {File.ReadAllText($"/proc/{pid}/cgroup")}");
    }

    /// <summary>Whether <paramref name="pid"/> exists and is not a zombie (a dead shim's children go to an ancestor that may reap late).</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0] != "Z";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static List<int> ChildrenOf(int pid)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (int.TryParse(Path.GetFileName(dir), out var p)
                    && File.ReadAllLines(Path.Combine(dir, "status")).Any(l => l == $"PPid:\t{pid}"))
                {
                    children.Add(p);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return children;
    }

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
}
