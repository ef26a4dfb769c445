using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A wasm container, as seen from the shim: its instance process (prepared and waiting on the start pipe until
/// <see cref="StartAsync"/>) and the write end of that pipe. The process's stdout/stderr are the FIFOs themselves, so
/// once the reaper saw it exit every byte of output has been written.
/// </summary>
public sealed class WasmInstance : IInstance
{
    private readonly string _id;
    private readonly ChildProcess _process;
    private readonly SafeFileHandle _start;

    internal WasmInstance(string id, ChildProcess process, SafeFileHandle start)
    {
        _id = id;
        _process = process;
        _start = start;
    }

    /// <inheritdoc/>
    public int Pid => _process.Pid;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken ct)
    {
        try
        {
            using var stream = new FileStream(_start, FileAccess.Write, bufferSize: 0);
            stream.WriteByte(1);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"container {_id}: instance process {Pid} is gone or was already started", e);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Kill(int signal) => _process.Signal(signal);

    /// <inheritdoc/>
    public Task<ExitStatus> WaitAsync(CancellationToken ct) => _process.Exited.WaitAsync(ct);

    /// <inheritdoc/>
    public async ValueTask DeleteAsync()
    {
        _start.Dispose();
        if (!_process.HasExited)
        {
            try
            {
                _process.Signal(Signals.SIGKILL);
            }
            catch (ShimException)
            {
                // Exited in between: the reaper has it.
            }
        }
        await _process.Exited.ConfigureAwait(false);
    }
}
