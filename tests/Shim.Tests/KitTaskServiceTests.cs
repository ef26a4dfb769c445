using Containerd.Events;
using Containerd.Runtime.TaskV2;
using Containerd.Shimkit;
using Containerd.Shimkit.Tasks;
using Grpc.Core;
using Xunit;
using TaskStatus = Containerd.V1.Types.Status;
using Task = System.Threading.Tasks.Task;

namespace Shim.Tests;

public class KitTaskServiceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly FakeFactory _factory = new();
    private readonly RecordingPublisher _events = new();
    private int _shutdowns;

    private TaskService NewService() => new(_factory, _events, new TaskServiceOptions
    {
        Info = new ShimInfo("io.containerd.test.v1", "1.2.3", "abc"),
        DefaultNamespace = "testns",
        ContainerdAddress = "/run/containerd/containerd.sock",
        TtrpcAddress = "/run/containerd/containerd.sock.ttrpc",
        OnShutdown = () => Interlocked.Increment(ref _shutdowns),
    });

    private static async Task<ShimException> Fails(Func<Task> call, StatusCode code)
    {
        var e = await Assert.ThrowsAsync<ShimException>(call);
        Assert.Equal(code, e.Code);
        return e;
    }

    [Fact]
    public async Task Full_lifecycle_publishes_create_start_exit_delete_in_order()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        var created = await svc.Create(new CreateTaskRequest { Id = "c1", Bundle = bundle.Path }, null!);
        var instance = Assert.Single(_factory.Created);
        Assert.Equal((uint)instance.Pid, created.Pid);
        Assert.Equal("testns", instance.Config.Namespace);
        Assert.Equal(Path.Combine(bundle.Path, "rootfs"), instance.Config.Rootfs);
        Assert.Equal(["/app.wasm"], instance.Config.Spec.Process!.Args);
        Assert.Null(instance.Config.Stdout);
        Assert.Equal(instance.Pid.ToString(), File.ReadAllText(Path.Combine(bundle.Path, "init.pid")));

        var state = await svc.State(new StateRequest { Id = "c1" }, null!);
        Assert.Equal(TaskStatus.Created, state.Status);
        Assert.Equal(bundle.Path, state.Bundle);

        var started = await svc.Start(new StartRequest { Id = "c1" }, null!);
        Assert.True(instance.Started);
        Assert.Equal(created.Pid, started.Pid);
        Assert.Equal(TaskStatus.Running, (await svc.State(new StateRequest { Id = "c1" }, null!)).Status);

        var wait = svc.Wait(new WaitRequest { Id = "c1" }, null!);
        Assert.False(wait.IsCompleted);
        instance.Exit(3);
        var waited = await wait.WaitAsync(Timeout);
        Assert.Equal(3u, waited.ExitStatus);

        state = await svc.State(new StateRequest { Id = "c1" }, null!);
        Assert.Equal(TaskStatus.Stopped, state.Status);
        Assert.Equal(3u, state.ExitStatus);
        Assert.NotNull(state.ExitedAt);

        var deleted = await svc.Delete(new DeleteRequest { Id = "c1" }, null!);
        Assert.Equal(3u, deleted.ExitStatus);
        Assert.Equal(created.Pid, deleted.Pid);
        Assert.Equal(1, instance.DeleteCalls);
        Assert.False(File.Exists(Path.Combine(bundle.Path, "init.pid")));
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], _events.Topics());
        var exit = Assert.IsType<TaskExit>(_events.Events[2].Event);
        Assert.Equal("c1", exit.ContainerId);
        Assert.Equal("c1", exit.Id);
        Assert.Equal(3u, exit.ExitStatus);
        Assert.Equal(created.Pid, exit.Pid);
        Assert.All(_events.Events, e => Assert.Equal("testns", e.Ns));

        await Fails(() => svc.State(new StateRequest { Id = "c1" }, null!), StatusCode.NotFound);
        await svc.Shutdown(new ShutdownRequest { Id = "c1" }, null!);
        Assert.Equal(1, _shutdowns);
    }

    [Fact]
    public async Task Unknown_ids_are_not_found()
    {
        var svc = NewService();
        await Fails(() => svc.Start(new StartRequest { Id = "nope" }, null!), StatusCode.NotFound);
        await Fails(() => svc.Kill(new KillRequest { Id = "nope", Signal = 9 }, null!), StatusCode.NotFound);
        await Fails(() => svc.Delete(new DeleteRequest { Id = "nope" }, null!), StatusCode.NotFound);
        await Fails(() => svc.Wait(new WaitRequest { Id = "nope" }, null!), StatusCode.NotFound);
        await Fails(() => svc.State(new StateRequest { Id = "nope" }, null!), StatusCode.NotFound);
        await Fails(() => svc.Pids(new PidsRequest { Id = "nope" }, null!), StatusCode.NotFound);
    }

    [Fact]
    public async Task Duplicate_create_is_already_exists()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        await svc.Create(new CreateTaskRequest { Id = "dup", Bundle = bundle.Path }, null!);
        var e = await Fails(() => svc.Create(new CreateTaskRequest { Id = "dup", Bundle = bundle.Path }, null!), StatusCode.AlreadyExists);
        Assert.Contains("dup", e.Message);
        Assert.Single(_factory.Created);
    }

    [Fact]
    public async Task Start_twice_and_kill_before_start_are_failed_precondition()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        await svc.Create(new CreateTaskRequest { Id = "c", Bundle = bundle.Path }, null!);
        await Fails(() => svc.Kill(new KillRequest { Id = "c", Signal = 15 }, null!), StatusCode.FailedPrecondition);
        await svc.Start(new StartRequest { Id = "c" }, null!);
        await Fails(() => svc.Start(new StartRequest { Id = "c" }, null!), StatusCode.FailedPrecondition);
        await Fails(() => svc.Delete(new DeleteRequest { Id = "c" }, null!), StatusCode.FailedPrecondition);

        await svc.Kill(new KillRequest { Id = "c", Signal = 9, All = true }, null!);
        Assert.Equal(137u, (await svc.Wait(new WaitRequest { Id = "c" }, null!).WaitAsync(Timeout)).ExitStatus);
        await Fails(() => svc.Kill(new KillRequest { Id = "c", Signal = 9 }, null!), StatusCode.NotFound);
        await Fails(() => svc.Start(new StartRequest { Id = "c" }, null!), StatusCode.FailedPrecondition);
    }

    [Fact]
    public async Task Deleting_a_created_task_kills_it_first()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        await svc.Create(new CreateTaskRequest { Id = "c", Bundle = bundle.Path }, null!);
        var deleted = await svc.Delete(new DeleteRequest { Id = "c" }, null!).WaitAsync(Timeout);
        Assert.Equal(137u, deleted.ExitStatus);
        Assert.Equal([9], _factory.Created[0].Signals);
        Assert.Equal(["/tasks/create", "/tasks/exit", "/tasks/delete"], _events.Topics());
        Assert.Equal(0, svc.TaskCount);
    }

    [Fact]
    public async Task Terminal_is_rejected_with_a_clear_invalid_argument()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        var e = await Fails(() => svc.Create(new CreateTaskRequest { Id = "t", Bundle = bundle.Path, Terminal = true }, null!), StatusCode.InvalidArgument);
        Assert.Contains("terminal", e.Message);
        Assert.Empty(_factory.Created);
    }

    [Fact]
    public async Task Missing_config_json_fails_create_naming_the_path_and_frees_the_id()
    {
        using var bundle = new TempBundle(configJson: null);
        var svc = NewService();
        var e = await Fails(() => svc.Create(new CreateTaskRequest { Id = "m", Bundle = bundle.Path }, null!), StatusCode.InvalidArgument);
        Assert.Contains(Path.Combine(bundle.Path, "config.json"), e.Message);
        Assert.Equal(0, svc.TaskCount);
        File.WriteAllText(Path.Combine(bundle.Path, "config.json"), "{}");
        await svc.Create(new CreateTaskRequest { Id = "m", Bundle = bundle.Path }, null!);
    }

    [Fact]
    public async Task Factory_failure_is_returned_and_stdio_is_closed()
    {
        using var bundle = new TempBundle();
        var fifo = Path.Combine(bundle.Path, "stdout");
        Assert.Equal(0, MkFifo(fifo));
        _factory.FailWith = new ShimException(StatusCode.InvalidArgument, "/app.wasm: not a wasm module");
        var svc = NewService();
        var e = await Fails(() => svc.Create(new CreateTaskRequest { Id = "f", Bundle = bundle.Path, Stdout = fifo }, null!), StatusCode.InvalidArgument);
        Assert.Equal("/app.wasm: not a wasm module", e.Message);
        Assert.Equal(0, svc.TaskCount);
        // The shim holds no descriptor of the FIFO any more.
        Assert.DoesNotContain(Directory.GetFiles("/proc/self/fd").Select(f => SafeReadLink(f)), t => t == fifo);
        Assert.Empty(_events.Events);
    }

    [Fact]
    public async Task Stdio_fifos_open_without_a_peer()
    {
        using var bundle = new TempBundle();
        var paths = new[] { "in", "out", "err" }.Select(n => Path.Combine(bundle.Path, n)).ToArray();
        foreach (var p in paths)
        {
            Assert.Equal(0, MkFifo(p));
        }
        var svc = NewService();
        await svc.Create(new CreateTaskRequest { Id = "io", Bundle = bundle.Path, Stdin = paths[0], Stdout = paths[1], Stderr = paths[2] }, null!).WaitAsync(Timeout);
        var config = _factory.Created[0].Config;
        Assert.NotNull(config.Stdin);
        Assert.NotNull(config.Stdout);
        Assert.NotNull(config.Stderr);
        // stdout is writable with nobody reading yet.
        using (var stream = new FileStream(config.Stdout!, FileAccess.Write, 0))
        {
            stream.Write("x"u8);
        }
        var state = await svc.State(new StateRequest { Id = "io" }, null!);
        Assert.Equal(paths[1], state.Stdout);
        config.Stdin!.Dispose();
        config.Stderr!.Dispose();
    }

    [Fact]
    public async Task Shutdown_waits_for_the_last_task()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        await svc.Create(new CreateTaskRequest { Id = "a", Bundle = bundle.Path }, null!);
        await svc.Shutdown(new ShutdownRequest { Id = "a" }, null!);
        Assert.Equal(0, _shutdowns);
        await svc.Delete(new DeleteRequest { Id = "a" }, null!).WaitAsync(Timeout);
        await svc.Shutdown(new ShutdownRequest { Id = "a" }, null!);
        Assert.Equal(1, _shutdowns);
    }

    [Fact]
    public async Task Pids_and_connect_report_the_task_and_shim()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        var created = await svc.Create(new CreateTaskRequest { Id = "p", Bundle = bundle.Path }, null!);
        var pids = await svc.Pids(new PidsRequest { Id = "p" }, null!);
        Assert.Equal(created.Pid, Assert.Single(pids.Processes).Pid);
        var connect = await svc.Connect(new ConnectRequest { Id = "p" }, null!);
        Assert.Equal((uint)Environment.ProcessId, connect.ShimPid);
        Assert.Equal(created.Pid, connect.TaskPid);
        Assert.Equal("1.2.3", connect.Version);
    }

    [Fact]
    public async Task Unsupported_methods_are_unimplemented()
    {
        var svc = NewService();
        var e = await Fails(() => svc.Exec(new ExecProcessRequest { Id = "x", ExecId = "e" }, null!), StatusCode.Unimplemented);
        Assert.Contains("not supported yet", e.Message);
        await Fails(() => svc.Pause(new PauseRequest { Id = "x" }, null!), StatusCode.Unimplemented);
        await Fails(() => svc.Resume(new ResumeRequest { Id = "x" }, null!), StatusCode.Unimplemented);
        // Update and Stats are implemented by instances with IInstanceResources (KitTaskServiceResourcesTests).
        await Fails(() => svc.Update(new UpdateTaskRequest { Id = "x" }, null!), StatusCode.NotFound);
        await Fails(() => svc.Stats(new StatsRequest { Id = "x" }, null!), StatusCode.NotFound);
        await Fails(() => svc.CloseIO(new CloseIORequest { Id = "x" }, null!), StatusCode.Unimplemented);
        await Fails(() => svc.ResizePty(new ResizePtyRequest { Id = "x" }, null!), StatusCode.Unimplemented);
        await Fails(() => svc.Checkpoint(new CheckpointTaskRequest { Id = "x" }, null!), StatusCode.Unimplemented);
    }

    [Fact]
    public async Task Exit_right_after_start_is_published_after_start()
    {
        using var bundle = new TempBundle();
        var svc = NewService();
        for (var i = 0; i < 50; i++)
        {
            await svc.Create(new CreateTaskRequest { Id = $"q{i}", Bundle = bundle.Path }, null!);
            var instance = _factory.Created[i];
            var start = svc.Start(new StartRequest { Id = $"q{i}" }, null!);
            instance.Exit(0);
            await start;
            await svc.Wait(new WaitRequest { Id = $"q{i}" }, null!).WaitAsync(Timeout);
            await svc.Delete(new DeleteRequest { Id = $"q{i}" }, null!).WaitAsync(Timeout);
        }
        var perTask = _events.Events.GroupBy(e => e.Event switch
        {
            TaskCreate c => c.ContainerId,
            TaskStart s => s.ContainerId,
            TaskExit x => x.ContainerId,
            TaskDelete d => d.ContainerId,
            _ => "",
        });
        Assert.All(perTask, g => Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], g.Select(e => e.Topic)));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(string path, int mode = 0x180);

    private static string? SafeReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
