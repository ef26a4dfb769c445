using Containerd.Shimkit.Processes;

namespace Containerd.Shimkit.Runc;

/// <summary>
/// A Linux container run by runc (see <see cref="RuncInstanceFactory"/>). The task pid is the container's init
/// process, a child of the shim since <c>runc create</c> exited; its exit, collected by the reaper, is the task's.
/// </summary>
public sealed class RuncInstance : IInstance
{
    private readonly string _id;
    private readonly string _bundle;
    private readonly RuncCli _runc;
    private readonly ChildProcess _init;
    private int _deleted;

    internal RuncInstance(string id, string bundle, RuncCli runc, ChildProcess init)
    {
        _id = id;
        _bundle = bundle;
        _runc = runc;
        _init = init;
    }

    /// <summary>The runc wrapper of this container (its state root and log).</summary>
    public RuncCli Runc => _runc;

    /// <summary>The container id runc knows it by.</summary>
    public string Id => _id;

    /// <inheritdoc/>
    public int Pid => _init.Pid;

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken ct)
    {
        try
        {
            await _runc.StartAsync(_id).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"container {_id}: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Kill(int signal) =>
        // Straight to the init pid, as runc kill would do, without starting runc; ChildProcess never signals a
        // reaped (possibly reused) pid. As with runc, an init in its own pid namespace only receives the signals it
        // handles, and SIGKILL.
        _init.Signal(signal);

    /// <inheritdoc/>
    public void KillAll(int signal)
    {
        if (_init.HasExited)
        {
            throw new ShimException(Grpc.Core.StatusCode.NotFound, $"container {_id}: process {_init.Pid} already finished");
        }
        try
        {
            _runc.KillAsync(_id, signal, all: true).GetAwaiter().GetResult();
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"container {_id}: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public Task<ExitStatus> WaitAsync(CancellationToken ct) =>
        // The init process wrote straight into containerd's FIFOs; once it is gone every byte is in them.
        _init.Exited.WaitAsync(ct);

    /// <inheritdoc/>
    public async ValueTask DeleteAsync()
    {
        if (Interlocked.Exchange(ref _deleted, 1) != 0)
        {
            return;
        }
        try
        {
            // --force: kills whatever is left in the container's cgroup, then removes the state and the cgroup.
            await _runc.DeleteAsync(_id).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"container {_id}: {e.Message}");
        }
        // The namespace's root folder stays, as containerd's runc shim leaves its own: removing it could race another
        // shim's runc create in the same namespace.
        TryDeleteFile(Path.Combine(_bundle, RuncInstanceFactory.PidFileName));
    }

    private static void TryDeleteFile(string path)
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
