using Grpc.Core;

namespace Containerd.Shimkit.Tasks;

/// <summary>
/// One task held by the Task service: its instance, what the kit set up for it (rootfs mount, stdio paths) and
/// its state machine. Transitions happen under <see cref="Gate"/> so that, for example, the exit event of a
/// program that ends immediately is published only after its start event.
/// </summary>
internal sealed class ShimTask
{
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ShimTask(string id, string ns, string bundle, string rootfs, bool rootfsMounted, IInstance instance,
        string stdin, string stdout, string stderr)
    {
        Id = id;
        Namespace = ns;
        Bundle = bundle;
        Rootfs = rootfs;
        RootfsMounted = rootfsMounted;
        Instance = instance;
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
        Pid = instance.Pid;
    }

    public string Id { get; }
    public string Namespace { get; }
    public string Bundle { get; }
    public string Rootfs { get; }
    public bool RootfsMounted { get; }
    public IInstance Instance { get; }
    public string Stdin { get; }
    public string Stdout { get; }
    public string Stderr { get; }
    public int Pid { get; }

    /// <summary>Serialises transitions and the events they publish.</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    public TaskState State { get; private set; } = TaskState.Created;

    /// <summary>Completes when the exit has been recorded (and its event queued).</summary>
    public Task<ExitStatus> Exited => _exited.Task;

    public ExitStatus? ExitStatus => _exited.Task.IsCompletedSuccessfully ? _exited.Task.Result : null;

    /// <summary>Created → Running.</summary>
    public void MarkStarted()
    {
        Require(TaskState.Created, "start");
        State = TaskState.Running;
    }

    /// <summary>Created or Running → Stopped.</summary>
    public void MarkExited(ExitStatus status)
    {
        if (State is TaskState.Created or TaskState.Running)
        {
            State = TaskState.Stopped;
        }
        _exited.TrySetResult(status);
    }

    /// <summary>Stopped → Deleted.</summary>
    public void MarkDeleted()
    {
        Require(TaskState.Stopped, "delete");
        State = TaskState.Deleted;
    }

    /// <summary>Throws FailedPrecondition unless the task is in <paramref name="expected"/>.</summary>
    public void Require(TaskState expected, string operation)
    {
        if (State != expected)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"cannot {operation} task {Id}: it is {Describe(State)}, not {Describe(expected)}");
        }
    }

    public static string Describe(TaskState state) => state switch
    {
        TaskState.Created => "created",
        TaskState.Running => "running",
        TaskState.Stopped => "stopped",
        _ => "deleted",
    };
}
