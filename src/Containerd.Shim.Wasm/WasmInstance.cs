using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A wasm container, as seen from the shim: its instance process (prepared and waiting on the start pipe until
/// <see cref="StartAsync"/>) and the write end of that pipe. The process's stdout/stderr are the FIFOs themselves, so
/// once the reaper saw it exit every byte of output has been written. The process lives in the container's cgroup
/// (when the spec has a <c>linux</c> section), which Stats and Update act on and Delete removes.
/// </summary>
internal sealed class WasmInstance : IInstance, IInstanceResources
{
    private readonly string _id;
    private readonly ChildProcess _process;
    private readonly SafeFileHandle _start;
    private readonly InstanceCgroup? _cgroup;

    internal WasmInstance(string id, ChildProcess process, SafeFileHandle start, InstanceCgroup? cgroup = null)
    {
        _id = id;
        _process = process;
        _start = start;
        _cgroup = cgroup;
    }

    /// <inheritdoc/>
    public event Action? OomKilled;

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
    public async Task<ExitStatus> WaitAsync(CancellationToken ct)
    {
        var status = await _process.Exited.WaitAsync(ct).ConfigureAwait(false);
        // A kill by the OOM killer is reported before the exit it caused.
        _cgroup?.CheckOom();
        return status;
    }

    /// <inheritdoc/>
    public Any Stats() => (_cgroup ?? throw InstanceCgroup.None(_id, "stats")).Stats();

    /// <inheritdoc/>
    public void Update(Any resources, IReadOnlyDictionary<string, string> annotations) =>
        (_cgroup ?? throw InstanceCgroup.None(_id, "update")).Update(resources);

    internal void RaiseOom()
    {
        ShimLog.Warn($"container {_id}: the kernel OOM-killed a process of instance process {Pid}'s cgroup");
        OomKilled?.Invoke();
    }

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
        _cgroup?.Dispose();
    }
}
