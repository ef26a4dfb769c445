using System.IO.Pipes;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Grpc.Core;

namespace NodeWasi;

/// <summary>One container: a <c>node</c> process waiting on its start gate (see <see cref="NodeInstanceFactory"/>).</summary>
internal sealed class NodeInstance(ChildProcess child, AnonymousPipeServerStream gate, byte[] configuration) : IInstance
{
    private readonly Lock _lock = new();
    private AnonymousPipeServerStream? _gate = gate;

    public int Pid => child.Pid;

    public async Task StartAsync(CancellationToken ct)
    {
        AnonymousPipeServerStream gate;
        lock (_lock)
        {
            gate = _gate ?? throw new ShimException(StatusCode.FailedPrecondition, "instance already started or deleted");
            _gate = null;
        }
        try
        {
            await gate.WriteAsync(configuration, ct);
        }
        catch (IOException e)
        {
            // The pipe broke: node died before Start (killed, or it could not load the runner). Its exit is reported
            // through WaitAsync as usual.
            throw new ShimException(StatusCode.FailedPrecondition, $"node (pid {Pid}) is gone: {e.Message}", e);
        }
        finally
        {
            await gate.DisposeAsync();
        }
    }

    public void Kill(int signal) => child.Signal(signal);

    public Task<ExitStatus> WaitAsync(CancellationToken ct) => child.Exited.WaitAsync(ct);

    public async ValueTask DeleteAsync()
    {
        AnonymousPipeServerStream? gate;
        lock (_lock)
        {
            gate = _gate;
            _gate = null;
        }
        if (gate is not null)
        {
            // Closing the gate unstarted makes runner.js exit without running the module.
            await gate.DisposeAsync();
        }
        if (!child.HasExited)
        {
            try
            {
                child.Signal(9);
            }
            catch (ShimException e) when (e.Code == StatusCode.NotFound)
            {
                // Exited between the check and the signal.
            }
            await child.Exited;
        }
    }
}
