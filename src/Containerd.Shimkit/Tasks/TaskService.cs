using Containerd.Events;
using Containerd.Runtime.TaskV2;
using Containerd.Shimkit.Events;
using Containerd.Shimkit.Mounts;
using Containerd.Shimkit.Oci;
using Containerd.V1.Types;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
using TaskStatus = Containerd.V1.Types.Status;
using TaskBase = Containerd.Runtime.TaskV2.Task.TaskBase;

namespace Containerd.Shimkit.Tasks;

/// <summary>
/// containerd's <c>containerd.task.v2.Task</c> service over any <see cref="IInstanceFactory"/>. It owns what the
/// kit sets up around an instance (rootfs mount, stdio files, init.pid, events) and each task's state machine;
/// the instance owns the process. Errors are thrown as <see cref="ShimException"/> and become gRPC statuses in
/// <see cref="ShimErrors"/>.
/// </summary>
public sealed class TaskService : TaskBase
{
    /// <summary>ttrpc metadata key carrying the request's containerd namespace.</summary>
    public const string NamespaceHeader = "containerd-namespace-ttrpc";

    private readonly IInstanceFactory _factory;
    private readonly IEventPublisher _events;
    private readonly TaskServiceOptions _options;
    // A null value reserves an id while its Create is in progress.
    private readonly Dictionary<string, ShimTask?> _tasks = [];
    private readonly Lock _gate = new();
    private int _shutdownRequested;

    /// <summary>Creates the service.</summary>
    public TaskService(IInstanceFactory factory, IEventPublisher events, TaskServiceOptions options)
    {
        _factory = factory;
        _events = events;
        _options = options;
    }

    /// <summary>Number of tasks the shim holds (including ones being created).</summary>
    public int TaskCount
    {
        get
        {
            lock (_gate)
            {
                return _tasks.Count;
            }
        }
    }

    /// <summary>Ids of the tasks the shim holds.</summary>
    public IReadOnlyList<string> TaskIds
    {
        get
        {
            lock (_gate)
            {
                return [.. _tasks.Where(t => t.Value is not null).Select(t => t.Key)];
            }
        }
    }

    /// <inheritdoc />
    public override async Task<CreateTaskResponse> Create(CreateTaskRequest request, ServerCallContext context)
    {
        ShimTrace.Mark($"server: Create {request.Id}");
        if (string.IsNullOrEmpty(request.Id))
        {
            throw new ShimException(StatusCode.InvalidArgument, "create: the task id is empty");
        }
        if (string.IsNullOrEmpty(request.Bundle))
        {
            throw new ShimException(StatusCode.InvalidArgument, $"create task {request.Id}: the bundle path is empty");
        }
        if (request.Terminal)
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"create task {request.Id}: terminal=true is not supported: wasm programs have no TTY (run without -t)");
        }
        if (!string.IsNullOrEmpty(request.Checkpoint))
        {
            throw new ShimException(StatusCode.Unimplemented, $"create task {request.Id}: restoring a checkpoint is not supported yet");
        }
        lock (_gate)
        {
            if (!_tasks.TryAdd(request.Id, null))
            {
                throw new ShimException(StatusCode.AlreadyExists, $"task {request.Id} already exists");
            }
        }

        var ns = NamespaceOf(context);
        var mounted = false;
        var rootfs = Path.Combine(request.Bundle, "rootfs");
        StdioFiles? stdio = null;
        try
        {
            var spec = Spec.Load(Path.Combine(request.Bundle, "config.json"));
            if (request.Rootfs.Count > 0)
            {
                Directory.CreateDirectory(rootfs);
                RootfsMount.MountAll(request.Rootfs, rootfs);
                mounted = true;
            }
            else if (!string.IsNullOrEmpty(spec.Root?.Path))
            {
                rootfs = Path.GetFullPath(spec.Root.Path, request.Bundle);
            }

            stdio = StdioFiles.Open(request.Stdin, request.Stdout, request.Stderr);
            ShimTrace.Mark("server: Create: rootfs mounted, stdio open");
            var config = new InstanceConfig
            {
                Id = request.Id,
                Namespace = ns,
                Bundle = request.Bundle,
                Rootfs = rootfs,
                Spec = spec,
                Stdin = stdio.Stdin,
                Stdout = stdio.Stdout,
                Stderr = stdio.Stderr,
                ContainerdAddress = _options.ContainerdAddress,
                TtrpcAddress = _options.TtrpcAddress,
            };
            var instance = await _factory.CreateAsync(config, context?.CancellationToken ?? default).ConfigureAwait(false);
            stdio.Release();

            var task = new ShimTask(request.Id, ns, request.Bundle, rootfs, mounted, instance, request.Stdin, request.Stdout, request.Stderr);
            await WritePidFileAsync(request.Bundle, task.Pid).ConfigureAwait(false);
            lock (_gate)
            {
                _tasks[request.Id] = task;
            }
            _events.Publish(ns, TaskTopics.Create, new TaskCreate
            {
                ContainerId = request.Id,
                Bundle = request.Bundle,
                Rootfs = { request.Rootfs },
                Io = new TaskIO { Stdin = request.Stdin, Stdout = request.Stdout, Stderr = request.Stderr, Terminal = request.Terminal },
                Pid = (uint)task.Pid,
            });
            if (instance is IInstanceResources watched)
            {
                watched.OomKilled += () => _events.Publish(ns, TaskTopics.Oom, new TaskOOM { ContainerId = request.Id });
            }
            _ = MonitorExitAsync(task);
            ShimLog.Info($"created task {request.Id} (pid {task.Pid}) in namespace {ns}");
            ShimTrace.Mark("server: Create answered");
            return new CreateTaskResponse { Pid = (uint)task.Pid };
        }
        catch (Exception e)
        {
            stdio?.Dispose();
            if (mounted)
            {
                TryUnmount(rootfs);
            }
            lock (_gate)
            {
                if (_tasks.TryGetValue(request.Id, out var existing) && existing is null)
                {
                    _tasks.Remove(request.Id);
                }
            }
            ShimLog.Warn($"create task {request.Id} failed: {e.Message}");
            throw;
        }
    }

    /// <inheritdoc />
    public override async Task<StartResponse> Start(StartRequest request, ServerCallContext context)
    {
        ShimTrace.Mark($"server: Start {request.Id}");
        var task = Get(request.Id, request.ExecId);
        await task.Gate.WaitAsync(context?.CancellationToken ?? default).ConfigureAwait(false);
        try
        {
            task.Require(TaskState.Created, "start");
            await task.Instance.StartAsync(context?.CancellationToken ?? default).ConfigureAwait(false);
            task.MarkStarted();
            // Published under the gate: the exit of a program that ends at once waits for it, keeping the order.
            _events.Publish(task.Namespace, TaskTopics.Start, new TaskStart { ContainerId = task.Id, Pid = (uint)task.Pid });
        }
        finally
        {
            task.Gate.Release();
        }
        ShimLog.Info($"started task {task.Id}");
        ShimTrace.Mark("server: Start answered");
        return new StartResponse { Pid = (uint)task.Pid };
    }

    /// <inheritdoc />
    public override Task<StateResponse> State(StateRequest request, ServerCallContext context)
    {
        ShimTrace.Mark("server: State");
        var task = Get(request.Id, request.ExecId);
        var response = new StateResponse
        {
            Id = task.Id,
            Bundle = task.Bundle,
            Pid = (uint)task.Pid,
            Status = task.State switch
            {
                TaskState.Created => TaskStatus.Created,
                TaskState.Running => TaskStatus.Running,
                TaskState.Stopped => TaskStatus.Stopped,
                _ => TaskStatus.Unknown,
            },
            Stdin = task.Stdin,
            Stdout = task.Stdout,
            Stderr = task.Stderr,
        };
        if (task.ExitStatus is { } exit)
        {
            response.ExitStatus = (uint)exit.ExitCode;
            response.ExitedAt = Timestamp.FromDateTimeOffset(exit.ExitedAt);
        }
        return Task.FromResult(response);
    }

    /// <inheritdoc />
    public override async Task<WaitResponse> Wait(WaitRequest request, ServerCallContext context)
    {
        ShimTrace.Mark($"server: Wait {request.Id}");
        var task = Get(request.Id, request.ExecId);
        var exit = await task.Exited.WaitAsync(context?.CancellationToken ?? default).ConfigureAwait(false);
        ShimTrace.Mark("server: Wait answered");
        return new WaitResponse { ExitStatus = (uint)exit.ExitCode, ExitedAt = Timestamp.FromDateTimeOffset(exit.ExitedAt) };
    }

    /// <inheritdoc />
    public override Task<Empty> Kill(KillRequest request, ServerCallContext context)
    {
        var task = Get(request.Id, request.ExecId);
        switch (task.State)
        {
            case TaskState.Created:
                throw new ShimException(StatusCode.FailedPrecondition, $"cannot kill task {task.Id}: it has not been started");
            case TaskState.Running:
                ShimLog.Debug($"kill task {task.Id} with signal {request.Signal} (all={request.All})");
                if (request.All)
                {
                    task.Instance.KillAll((int)request.Signal);
                }
                else
                {
                    task.Instance.Kill((int)request.Signal);
                }
                break;
            default:
                throw new ShimException(StatusCode.NotFound, $"cannot kill task {task.Id}: process already finished");
        }
        return Task.FromResult(new Empty());
    }

    /// <inheritdoc />
    public override async Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context)
    {
        ShimTrace.Mark($"server: Delete {request.Id}");
        var ct = context?.CancellationToken ?? default;
        var task = Get(request.Id, request.ExecId);
        await task.Gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (task.State == TaskState.Running)
            {
                throw new ShimException(StatusCode.FailedPrecondition, $"cannot delete task {task.Id}: it is running (kill it first)");
            }
            if (task.State == TaskState.Created)
            {
                // Never started: nothing to wait for but the process the factory prepared.
                try
                {
                    task.Instance.Kill(Libc.SIGKILL);
                }
                catch (ShimException e) when (e.Code is StatusCode.NotFound or StatusCode.FailedPrecondition)
                {
                }
            }
        }
        finally
        {
            task.Gate.Release();
        }

        var exit = await task.Exited.WaitAsync(ct).ConfigureAwait(false);
        await task.Gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (task.State == TaskState.Deleted)
            {
                throw new ShimException(StatusCode.NotFound, $"task {task.Id} not found");
            }
            task.MarkDeleted();
            try
            {
                await task.Instance.DeleteAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                ShimLog.Error($"releasing task {task.Id}", e);
            }
            if (task.RootfsMounted)
            {
                TryUnmount(task.Rootfs);
            }
            TryDelete(Path.Combine(task.Bundle, PidFileName));
            TryDelete(Path.Combine(task.Bundle, PidStartFileName));
            lock (_gate)
            {
                _tasks.Remove(task.Id);
            }
            _events.Publish(task.Namespace, TaskTopics.Delete, new TaskDelete
            {
                ContainerId = task.Id,
                Pid = (uint)task.Pid,
                ExitStatus = (uint)exit.ExitCode,
                ExitedAt = Timestamp.FromDateTimeOffset(exit.ExitedAt),
            });
        }
        finally
        {
            task.Gate.Release();
        }
        ShimLog.Info($"deleted task {task.Id}");
        ShimTrace.Mark("server: Delete answered");
        return new DeleteResponse { Pid = (uint)task.Pid, ExitStatus = (uint)exit.ExitCode, ExitedAt = Timestamp.FromDateTimeOffset(exit.ExitedAt) };
    }

    /// <inheritdoc />
    public override Task<PidsResponse> Pids(PidsRequest request, ServerCallContext context)
    {
        var task = Get(request.Id, "");
        return Task.FromResult(new PidsResponse { Processes = { new ProcessInfo { Pid = (uint)task.Pid } } });
    }

    /// <inheritdoc />
    public override Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context)
    {
        ShimTrace.Mark("server: Connect");
        ShimTask? task;
        lock (_gate)
        {
            _tasks.TryGetValue(request.Id, out task);
        }
        return Task.FromResult(new ConnectResponse
        {
            ShimPid = (uint)Environment.ProcessId,
            TaskPid = (uint)(task?.Pid ?? 0),
            Version = _options.Info.Version,
        });
    }

    /// <inheritdoc />
    public override Task<Empty> Shutdown(ShutdownRequest request, ServerCallContext context)
    {
        ShimTrace.Mark("server: Shutdown");
        if (TaskCount > 0)
        {
            // containerd calls Shutdown after each Delete; a shim serving other containers (a pod) stays.
            ShimLog.Debug($"shutdown requested for {request.Id}: {TaskCount} task(s) remain, staying up");
            return Task.FromResult(new Empty());
        }
        if (Interlocked.Exchange(ref _shutdownRequested, 1) == 0)
        {
            ShimLog.Info("shutdown: no task remains, exiting");
            if (_options.CleanShutdownBundle is { } bundle)
            {
                // Written before Shutdown answers: whoever removes the bundle next (containerd, after `shim delete`)
                // must not race a file this process is still adding to it.
                ShimDelete.MarkCleanShutdown(bundle);
            }
            _options.OnShutdown?.Invoke();
        }
        return Task.FromResult(new Empty());
    }

    /// <inheritdoc />
    public override Task<Empty> Pause(PauseRequest request, ServerCallContext context) => throw NotSupported("Pause");

    /// <inheritdoc />
    public override Task<Empty> Resume(ResumeRequest request, ServerCallContext context) => throw NotSupported("Resume");

    /// <inheritdoc />
    public override Task<Empty> Checkpoint(CheckpointTaskRequest request, ServerCallContext context) => throw NotSupported("Checkpoint");

    /// <inheritdoc />
    public override Task<Empty> Exec(ExecProcessRequest request, ServerCallContext context) => throw NotSupported("Exec");

    /// <inheritdoc />
    public override Task<Empty> ResizePty(ResizePtyRequest request, ServerCallContext context) => throw NotSupported("ResizePty");

    /// <inheritdoc />
    public override Task<Empty> CloseIO(CloseIORequest request, ServerCallContext context) => throw NotSupported("CloseIO");

    /// <inheritdoc />
    public override async Task<Empty> Update(UpdateTaskRequest request, ServerCallContext context)
    {
        var task = Get(request.Id, "");
        var resources = task.Instance as IInstanceResources
            ?? throw new ShimException(StatusCode.Unimplemented, $"update task {task.Id}: this instance has no resource controls");
        if (request.Resources is null)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"update task {task.Id}: the request carries no resources");
        }
        await task.Gate.WaitAsync(context?.CancellationToken ?? default).ConfigureAwait(false);
        try
        {
            if (task.State is not (TaskState.Created or TaskState.Running))
            {
                throw new ShimException(StatusCode.FailedPrecondition,
                    $"cannot update task {task.Id}: it is {ShimTask.Describe(task.State)}");
            }
            resources.Update(request.Resources, request.Annotations);
        }
        finally
        {
            task.Gate.Release();
        }
        ShimLog.Info($"updated the resources of task {task.Id}");
        return new Empty();
    }

    /// <inheritdoc />
    public override Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context)
    {
        var task = Get(request.Id, "");
        var resources = task.Instance as IInstanceResources
            ?? throw new ShimException(StatusCode.Unimplemented, $"stats of task {task.Id}: this instance has no resource metrics");
        if (task.State == TaskState.Deleted)
        {
            throw new ShimException(StatusCode.NotFound, $"task {task.Id} not found");
        }
        return Task.FromResult(new StatsResponse { Stats = resources.Stats() });
    }

    /// <summary>Kills every remaining task and releases what the kit set up for it (the shim is going away).</summary>
    public async Task KillAllAsync(TimeSpan timeout)
    {
        ShimTask[] tasks;
        lock (_gate)
        {
            tasks = [.. _tasks.Values.OfType<ShimTask>()];
        }
        foreach (var task in tasks)
        {
            try
            {
                if (task.State is TaskState.Created or TaskState.Running)
                {
                    task.Instance.Kill(Libc.SIGKILL);
                }
            }
            catch (ShimException)
            {
            }
            try
            {
                await task.Exited.WaitAsync(timeout).ConfigureAwait(false);
                await task.Instance.DeleteAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                ShimLog.Error($"cleaning up task {task.Id} at exit", e);
            }
            if (task.RootfsMounted)
            {
                TryUnmount(task.Rootfs);
            }
        }
    }

    internal const string PidFileName = "init.pid";

    /// <summary>Beside <see cref="PidFileName"/>: the process's start time (<c>/proc/&lt;pid&gt;/stat</c> field 22).</summary>
    internal const string PidStartFileName = "init.pid.start";

    private static ShimException NotSupported(string method) =>
        new(StatusCode.Unimplemented, $"{method} is not supported yet by this shim");

    private string NamespaceOf(ServerCallContext? context)
    {
        var value = context?.RequestHeaders?.GetValue(NamespaceHeader);
        return string.IsNullOrEmpty(value) ? _options.DefaultNamespace : value;
    }

    private ShimTask Get(string id, string execId)
    {
        ShimTask? task;
        lock (_gate)
        {
            _tasks.TryGetValue(id, out task);
        }
        if (task is null)
        {
            throw new ShimException(StatusCode.NotFound, $"task {id} not found");
        }
        if (!string.IsNullOrEmpty(execId))
        {
            throw new ShimException(StatusCode.NotFound, $"exec {execId} of task {id} not found (exec is not supported yet)");
        }
        return task;
    }

    private async Task MonitorExitAsync(ShimTask task)
    {
        ExitStatus status;
        try
        {
            status = await task.Instance.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The instance could not tell how its program ended: report a failure rather than hang every waiter.
            ShimLog.Error($"waiting for task {task.Id}", e);
            status = new ExitStatus(255, DateTimeOffset.UtcNow);
        }
        await task.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            task.MarkExited(status);
            _events.Publish(task.Namespace, TaskTopics.Exit, new TaskExit
            {
                ContainerId = task.Id,
                Id = task.Id,
                Pid = (uint)task.Pid,
                ExitStatus = (uint)status.ExitCode,
                ExitedAt = Timestamp.FromDateTimeOffset(status.ExitedAt),
            });
        }
        finally
        {
            task.Gate.Release();
        }
        ShimLog.Info($"task {task.Id} exited with status {status.ExitCode}");
        ShimTrace.Mark("server: exit published");
    }

    private static async Task WritePidFileAsync(string bundle, int pid)
    {
        try
        {
            await File.WriteAllTextAsync(Path.Combine(bundle, PidFileName), pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).ConfigureAwait(false);
            // With the pid, the start time names the process: `delete` kills a pid only while both still match.
            if (Processes.ProcessHandle.StartTime(pid) is { } start)
            {
                await File.WriteAllTextAsync(Path.Combine(bundle, PidStartFileName), start.ToString(System.Globalization.CultureInfo.InvariantCulture)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only `delete` after a crashed shim needs it; the task itself works without.
            ShimLog.Warn($"writing {PidFileName} in {bundle}: {e.Message}");
        }
    }

    private static void TryUnmount(string rootfs)
    {
        try
        {
            RootfsMount.UnmountAll(rootfs);
        }
        catch (ShimException e)
        {
            ShimLog.Error($"unmounting {rootfs}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
