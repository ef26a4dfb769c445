namespace Containerd.Shimkit;

/// <summary>
/// One container as the embedder runs it. The kit drives it through the task lifecycle; the embedder
/// owns the process model (which OS process runs the program and how its stdio is wired).
/// </summary>
public interface IInstance
{
    /// <summary>The OS process id of the container's init process; the task PID containerd sees. Valid once
    /// <see cref="IInstanceFactory.CreateAsync"/> returned the instance.</summary>
    int Pid { get; }

    /// <summary>Lets the program run. Before this call the process exists but must not execute user code.</summary>
    Task StartAsync(CancellationToken ct);

    /// <summary>Sends <paramref name="signal"/> to the instance's process. Throws <see cref="ShimException"/> with
    /// <c>NotFound</c> when the process has already exited, <c>FailedPrecondition</c> when it cannot be signalled yet.</summary>
    void Kill(int signal);

    /// <summary>Sends <paramref name="signal"/> to every process of the container (<c>ctr task kill --all</c>). An
    /// instance that is a single process signals it, the default.</summary>
    void KillAll(int signal) => Kill(signal);

    /// <summary>Completes when the program exited and every byte of its stdout/stderr has been written; the kit
    /// publishes the task exit only then.</summary>
    Task<ExitStatus> WaitAsync(CancellationToken ct);

    /// <summary>Releases what the instance owns (process, handles, temporary files). Idempotent.</summary>
    ValueTask DeleteAsync();
}
