using System.Net;
using System.Runtime.InteropServices;
using Containerd.Shim.Wasm;
using Containerd.Shim.Wasmtime.Http;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// A wasi:http/proxy component container of the shared-mode daemon: a Kestrel server of its own on the address its
/// environment names, bound inside the container's network namespace (<see cref="NetworkNamespace"/>), every request
/// a fresh instance of the component compiled once on the daemon's engine. Its pid is the daemon's.
/// </summary>
/// <remarks>
/// Kill as in normal mode: the first SIGINT stops accepting, lets requests in flight finish (at most
/// <see cref="HttpServerLimits.DrainTimeout"/>) and ends with 0; any other terminating signal, or a second one, aborts
/// the connections, traps the guests still running at their next epoch deadline and ends with 128+signal. Either way
/// the listening socket is closed before the task is reported exited.
/// </remarks>
internal sealed class InProcessProxyInstance : IInstance, IInstanceResources
{
    private const int SigInt = 2, SigKill = 9;
    private static readonly TimeSpan DeleteDeadline = TimeSpan.FromSeconds(5);

    private readonly SharedWasmtimeHost _host;
    private readonly ProxyHost _proxy;
    // The container's hold on the compiled proxy, given back when it ends (the host itself outlives its last request).
    private readonly IDisposable _programLease;
    private readonly string _id;
    private readonly string _name;
    private readonly IPEndPoint _endpoint;
    private readonly HttpServerLimits _limits;
    private readonly string? _netns;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly FifoStream _stdout, _stderr;
    private readonly ProxyGuestContext _guest;
    private readonly StoreShape _shape;
    private SafeFileHandle? _stdin;
    private WasiHttpServer? _server;
    private CancellationTokenSource? _drain;
    private bool _started, _finished, _stopClosed;
    private int _status = -1;

    private InProcessProxyInstance(SharedWasmtimeHost host, ProxyHost proxy, IDisposable lease, InstanceConfig config, RuntimeContext ctx,
        IPEndPoint endpoint, HttpServerLimits limits, StoreShape shape)
    {
        _limits = limits;
        _shape = shape;
        _host = host;
        _programLease = lease;
        _proxy = proxy;
        _id = config.Id;
        _name = ctx.Entrypoint.Name;
        _endpoint = endpoint;
        _netns = NetworkNamespace.PathOf(ctx.Spec);
        StopFd = HostIo.EventFd(0, HostIo.EFD_CLOEXEC);
        if (StopFd < 0)
        {
            throw new ShimException(StatusCode.Internal, $"container {config.Id}: eventfd: errno {Marshal.GetLastPInvokeError()}");
        }
        _stdin = config.Stdin;
        _stdout = new FifoStream(config.Stdout, StopFd);
        _stderr = new FifoStream(config.Stderr, StopFd);
        // The container's own pool, connecting from its network namespace; closed when the container ends. Every
        // request's store gets the container's memory limit, covering all its memories and tables; the threads of
        // all its requests share its CPU quota, and each holds one of the daemon's guest threads while it runs.
        var resources = ctx.Spec.Linux?.Resources;
        var memoryLimit = resources?.Memory?.Limit is > 0 and var limit ? limit : 0;
        _guest = new ProxyGuestContext(_stdout, _stderr, new OutgoingClient(_netns))
        {
            StoreLimits = new ProxyStoreLimits(shape, memoryLimit),
            Cpu = new CpuQuota(resources?.Cpu),
            Threads = host.GuestThreads,
            Connections = host.Connections,
        };
    }

    /// <summary>Readable once the instance has ended: output writes still waiting for room give up.</summary>
    private int StopFd { get; }

    /// <inheritdoc/>
    public int Pid => Environment.ProcessId;

    /// <summary>Checks the listen address (a bad one fails Create, as no server could start).</summary>
    public static InProcessProxyInstance Create(SharedWasmtimeHost host, ProxyHost proxy, IDisposable lease, InstanceConfig config,
        RuntimeContext ctx, StoreShape shape)
    {
        IPEndPoint endpoint;
        try
        {
            endpoint = WasiHttpServer.ParseAddress(ctx.EnvironmentVariables.LastOrDefault(e => e.Name == WasiHttpServer.AddressVariable).Value);
        }
        catch (FormatException e)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"container {config.Id}: {e.Message}");
        }
        // The daemon's environment sets the limits of every container's server; a bad value fails Create, naming it.
        // The spec's pids limit, where a process would count its threads, caps the guests running at once.
        var limits = HttpServerLimits.FromEnvironment();
        if (ctx.Spec.Linux?.Resources?.Pids?.Limit is > 0 and var pids && pids < limits.MaxRequests)
        {
            limits = limits with { MaxRequests = (int)pids };
        }
        return new InProcessProxyInstance(host, proxy, lease, config, ctx, endpoint, limits, shape);
    }

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            if (_started || _finished)
            {
                throw new ShimException(StatusCode.FailedPrecondition, $"container {_id} was already started or has ended");
            }
            _started = true;
        }
        _host.InstanceStarted();
        // A proxy component has no stdin (wasi:cli/stdin is empty for it).
        _stdin?.Dispose();
        _stdin = null;
        WasiHttpServer server;
        try
        {
            server = await WasiHttpServer.StartAsync(_proxy, ownsHost: false, _endpoint,
                endpoint => NetworkNamespace.Bind(_netns, endpoint), _guest, _limits, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            // As the instance process of normal mode does: the reason on the container's stderr, status 1.
            _guest.Report($"wasmtime: {_name}: cannot serve on {_endpoint}{(_netns is null ? "" : $" in {_netns}")}: {e.Message}");
            Finish(1);
            return;
        }
        bool stopNow;
        lock (_gate)
        {
            _server = server;
            // A kill that came while the server was starting.
            stopNow = _status >= 0;
        }
        _guest.Report($"wasmtime: {_name}: serving wasi:http on {string.Join(", ", server.Addresses)}");
        if (stopNow)
        {
            BeginStop(hard: _status != 0);
        }
    }

    /// <inheritdoc/>
    public void Kill(int signal)
    {
        bool started, hard;
        lock (_gate)
        {
            if (_finished)
            {
                throw new ShimException(StatusCode.NotFound, $"container {_id} has already exited");
            }
            // What a process does by default with these: nothing.
            if (signal is 0 or 17 or 18 or 23 or 28)
            {
                return;
            }
            // The first SIGINT drains; anything else, or a second SIGINT, ends the server at once.
            hard = signal != SigInt || _status >= 0;
            if (_status <= 0)
            {
                _status = hard ? 128 + signal : 0;
            }
            started = _started;
        }
        if (!started)
        {
            Finish(128 + signal);
            return;
        }
        BeginStop(hard);
    }

    /// <inheritdoc/>
    public Task<ExitStatus> WaitAsync(CancellationToken ct) => _exited.Task.WaitAsync(ct);

    /// <inheritdoc/>
    public async ValueTask DeleteAsync()
    {
        if (!_exited.Task.IsCompleted)
        {
            try
            {
                Kill(SigKill);
            }
            catch (ShimException)
            {
            }
        }
        try
        {
            await _exited.Task.WaitAsync(DeleteDeadline).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Guests blocked in our pollables wake on the kill; one stuck in another host call keeps the server from
            // stopping. Delete ends anyway; the stop eventfd stays open for what may still poll it.
            ShimLog.Warn($"container {_id}: the wasi:http server did not stop within {DeleteDeadline.TotalSeconds} s of the kill; deleted without waiting for it");
            return;
        }
        lock (_gate)
        {
            if (!_stopClosed)
            {
                _stopClosed = true;
                HostIo.Close(StopFd);
            }
        }
    }

    /// <summary>
    /// The container's CPU time (its requests' guest threads, charged at each epoch tick and at each request's end),
    /// its CPU throttling and its memory limit. Memory usage is reported as 0: a request's store lives only while
    /// the request does, and the limit bounds each of them.
    /// </summary>
    public Any Stats()
    {
        var cpu = _guest.Cpu!;
        var (periods, throttled, throttledNs) = cpu.Throttling();
        var limit = _guest.StoreLimits?.MemoryLimit ?? 0;
        return EngineMetrics.Pack(new EngineUsage(
            MemoryUsage: 0,
            MemoryLimit: limit > 0 ? (ulong)limit : 0,
            CpuNanos: (ulong)cpu.UsedNanos,
            Periods: periods,
            ThrottledPeriods: throttled,
            ThrottledNanos: throttledNs));
    }

    /// <summary>New limits for the requests from now on: <c>memory.limit</c> for their stores (-1 or 0 removes it),
    /// <c>cpu.quota</c>/<c>cpu.period</c> for all the container's guest threads, running ones included. Shares,
    /// cpusets, pids and swap are ignored, as for command containers.</summary>
    public void Update(Any resources, IReadOnlyDictionary<string, string> annotations)
    {
        var update = CgroupResources.Unpack(resources, _id);
        lock (_gate)
        {
            if (_finished)
            {
                throw new ShimException(StatusCode.NotFound, $"update task {_id}: the container has exited");
            }
        }
        if (update.Memory?.Limit is { } memory)
        {
            _guest.StoreLimits = new ProxyStoreLimits(_shape, memory > 0 ? memory : 0);
        }
        _guest.Cpu!.Set(update.Cpu);
        ShimLog.Debug($"container {_id}: memory limit {_guest.StoreLimits?.MemoryLimit}, cpu quota {_guest.Cpu.QuotaMicros}/{_guest.Cpu.PeriodMicros} us");
    }

    /// <inheritdoc/>
    public event Action? OomKilled
    {
        // A guest over its memory limit sees memory.grow fail; nothing is ever killed for it.
        add { }
        remove { }
    }

    private void BeginStop(bool hard)
    {
        CancellationTokenSource? drain;
        WasiHttpServer? server;
        bool first;
        lock (_gate)
        {
            server = _server;
            if (server is null)
            {
                // Still starting: StartAsync stops it when it is up.
                return;
            }
            first = _drain is null;
            _drain ??= new CancellationTokenSource(_limits.DrainTimeout);
            drain = _drain;
        }
        if (hard)
        {
            // Guests still running trap at their next epoch deadline, which the tick brings now; Kestrel aborts the
            // connections once the drain token is cancelled.
            _guest.Kill();
            _host.Engine.IncrementEpoch();
            try
            {
                drain.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The stop has just completed.
            }
        }
        if (first)
        {
            _ = Task.Run(() => StopAsync(server, drain));
        }
    }

    private async Task StopAsync(WasiHttpServer server, CancellationTokenSource drain)
    {
        try
        {
            await server.StopAsync(drain.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            ShimLog.Warn($"container {_id}: stopping the wasi:http server: {e.Message}");
        }
        finally
        {
            try
            {
                await server.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                ShimLog.Warn($"container {_id}: disposing the wasi:http server: {e.Message}");
            }
            drain.Dispose();
            int status;
            lock (_gate)
            {
                status = _status;
            }
            Finish(status);
        }
    }

    private void Finish(int code)
    {
        bool started;
        lock (_gate)
        {
            if (_finished)
            {
                return;
            }
            _finished = true;
            started = _started;
        }
        HostIo.Signal(StopFd);
        _stdin?.Dispose();
        _stdin = null;
        _stdout.Dispose();
        _stderr.Dispose();
        _guest.Outgoing.Dispose();
        _programLease.Dispose();
        if (started)
        {
            _host.InstanceEnded();
        }
        _exited.TrySetResult(new ExitStatus(code, DateTimeOffset.UtcNow));
    }

    /// <summary>
    /// A container's stdout or stderr FIFO as the guests of every request write it: whole writes under a lock (so
    /// concurrent requests' lines do not interleave mid-write), waiting for room without blocking past the instance's
    /// end, refused once it is closed.
    /// </summary>
    private sealed class FifoStream : Stream
    {
        private readonly Lock _gate = new();
        private readonly int _stopFd;
        private SafeFileHandle? _handle;
        private bool _closed;

        public FifoStream(SafeFileHandle? handle, int stopFd)
        {
            _handle = handle;
            _stopFd = stopFd;
            if (handle is not null)
            {
                // Our own open of the FIFO (the kit's): non-blocking so a write can wait for room and for the end at once.
                HostIo.SetNonBlocking((int)handle.DangerousGetHandle());
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                // No FIFO (the container's output goes nowhere): written away.
                if (_handle is { } handle)
                {
                    HostIo.WriteAll((int)handle.DangerousGetHandle(), buffer, _stopFd);
                }
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Under the lock: a write in progress ends first (the stop eventfd, signalled before, cuts its wait).
                lock (_gate)
                {
                    _closed = true;
                    _handle?.Dispose();
                    _handle = null;
                }
            }
            base.Dispose(disposing);
        }
    }
}
