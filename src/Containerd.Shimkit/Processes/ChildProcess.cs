using System.Runtime.InteropServices;
using Grpc.Core;

namespace Containerd.Shimkit.Processes;

/// <summary>A child process spawned through <see cref="Reaper.Spawn"/>; its exit is collected by the reaper.</summary>
public sealed class ChildProcess
{
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal ChildProcess(int pid)
    {
        Pid = pid;
    }

    /// <summary>The child's process id.</summary>
    public int Pid { get; }

    /// <summary>Completes when the reaper collected the child; death by signal N is exit code 128+N.</summary>
    public Task<ExitStatus> Exited => _exited.Task;

    /// <summary>Whether the child has been reaped (its pid may already belong to another process).</summary>
    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Sends <paramref name="signal"/> with kill(2). Throws <see cref="ShimException"/> with
    /// <c>NotFound</c> once the child has been reaped, so a recycled pid is never signalled.</summary>
    public void Signal(int signal)
    {
        // The reaper completes Exited under the same lock, so the pid cannot be reaped (and reused) in between.
        lock (Reaper.Gate)
        {
            if (HasExited)
            {
                throw new ShimException(StatusCode.NotFound, $"process {Pid} already finished");
            }
            if (Libc.Kill(Pid, signal) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new ShimException(errno == Libc.ESRCH ? StatusCode.NotFound : StatusCode.Internal,
                    $"kill process {Pid} with signal {signal}: {Libc.StrError(errno)}");
            }
        }
    }

    internal void SetExited(ExitStatus status) => _exited.TrySetResult(status);
}
