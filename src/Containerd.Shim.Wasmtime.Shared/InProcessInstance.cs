using System.Diagnostics;
using System.Runtime.InteropServices;
using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;
using Wasmtime;
using Wasmtime.Components;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// One container of the shared-mode daemon: a Wasmtime store and instance, prepared at Create (compiled or cached
/// module, WASI context, instantiation) and run on a thread of its own at Start. Its pid is the daemon's.
/// </summary>
/// <remarks>
/// Kill stops this instance alone, with status 128+signal, wherever the guest is: the epoch deadline callback traps a
/// guest running wasm code; the instance's stop eventfd wakes every wait the daemon does for it (our poll_oneoff,
/// the stdout/stderr writes, the stdin pump), and closing the stdin pipe ends a read Wasmtime itself is blocked in.
/// A guest inside a WASI 0.2 host call nothing can wake (Wasmtime's own clock sleep) is detached after
/// <see cref="KillGrace"/>: its stdio is silenced, the exit is published, and its thread keeps the store and releases
/// it when the call returns (docs/architecture.md, Detached guests).
/// </remarks>
internal sealed class InProcessInstance : IInstance, IInstanceResources
{
    private const int SigKill = 9;
    private const long NoPendingLimit = long.MinValue;
    private const int ThreadStackSize = 2 << 20;
    private static readonly TimeSpan KillGrace = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan DeleteDeadline = TimeSpan.FromSeconds(5);

    private readonly SharedWasmtimeHost _host;
    private readonly string _id;
    private readonly RuntimeContext _ctx;
    private readonly Lock _gate = new();
    // Held by every write of guest output, and by the silencing of a detached guest: that waits for a write in
    // progress, so all output written before it reaches the FIFOs before the exit is published.
    private readonly Lock _output = new();
    private readonly TaskCompletionSource<ExitStatus> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _clockBase = Stopwatch.GetTimestamp();
    // The memory limit Stats reports (0: none) and the one waiting to be applied on the guest's thread (a store is
    // not thread-safe, so another thread never sets its limits while the guest may run).
    private long _memoryLimit;
    private long _pendingMemoryLimit = NoPendingLimit;
    // The CPU quota of the guest's thread, charged at every epoch deadline.
    private readonly CpuQuota _cpu;

    // What one instantiation of the guest's binary makes: the store's caps (SetStoreLimits).
    private readonly StoreShape _shape;
    // The container's hold on its compiled program, given back once the store is gone.
    private readonly IDisposable _programLease;
    // The thread's CPU time at its last charge; touched by the guest's thread only.
    private long _lastCpuNs;
    private int _tid;
    // 1 while the instance holds one of the daemon's guest threads (DaemonLimit).
    private int _holdsThread;
    private long _cpuNanosAtExit = -1;
    private SafeFileHandle? _stdin, _stdout, _stderr;
    private int _stdinRead = -1, _stdinWrite = -1;
    private Store? _store;
    private Func<int>? _run;
    private Memory? _memory;
    private Thread? _pump;
    private bool _started;
    private bool _finished;
    private bool _stopClosed;
    private int _killSignal;
    private bool _graceArmed;
    // Detached: the exit is published while the guest's thread is still inside a host call; that thread owns the
    // store, the stdio handles and the stop eventfd (once Delete is done with it) and releases them when it returns.
    private bool _detached;
    private bool _guestReturned;
    private bool _deleted;
    private bool _silenced;

    private InProcessInstance(SharedWasmtimeHost host, InstanceConfig config, RuntimeContext ctx, CompiledProgram program)
    {
        _host = host;
        _id = config.Id;
        _ctx = ctx;
        _stdin = config.Stdin;
        _stdout = config.Stdout;
        _stderr = config.Stderr;
        var resources = ctx.Spec.Linux?.Resources;
        _memoryLimit = resources?.Memory?.Limit is > 0 and var limit ? limit : 0;
        _shape = program.Shape;
        _programLease = program.Lease;
        _cpu = new CpuQuota(resources?.Cpu);
        StopFd = HostIo.EventFd(0, HostIo.EFD_CLOEXEC);
        if (StopFd < 0)
        {
            throw new ShimException(StatusCode.Internal, $"container {config.Id}: eventfd: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Readable once the instance is killed or finished.</summary>
    public int StopFd { get; }

    /// <summary>The read end of the stdin pipe, for poll_oneoff; -1 when the container has no stdin.</summary>
    public int StdinPollFd => _stdinRead;

    /// <inheritdoc/>
    public int Pid => Environment.ProcessId;

    /// <inheritdoc/>
    public event Action? OomKilled
    {
        // A guest over its memory limit sees memory.grow fail; nothing is ever killed for it.
        add { }
        remove { }
    }

    /// <summary>Prepares the container; on failure releases what it made, except the stdio handles (the kit's until
    /// this returns).</summary>
    public static InProcessInstance Create(SharedWasmtimeHost host, InstanceConfig config, RuntimeContext ctx, CompiledProgram program)
    {
        // The guest's thread, reserved now so a Create past the daemon's cap is refused before anything is made.
        host.GuestThreads.Acquire(config.Id);
        InProcessInstance instance;
        try
        {
            instance = new InProcessInstance(host, config, ctx, program);
        }
        catch
        {
            host.GuestThreads.Release();
            throw;
        }
        instance._holdsThread = 1;
        try
        {
            instance.Prepare(program);
            return instance;
        }
        catch
        {
            instance._stdin = instance._stdout = instance._stderr = null;
            instance.Release();
            throw;
        }
    }

    /// <summary>Nanoseconds since the WASI context was made: the scale of Wasmtime's monotonic clock.</summary>
    public long MonotonicNow() => (long)(Stopwatch.GetElapsedTime(_clockBase).Ticks * 100);

    /// <summary>Whether a read on stdin would not block (data, or EOF).</summary>
    public unsafe bool StdinReady()
    {
        var fd = new HostIo.PollFd { Fd = _stdinRead, Events = HostIo.POLLIN };
        return HostIo.Poll(&fd, 1, 0) > 0 && fd.REvents != 0;
    }

    /// <summary>Traps the guest when the instance was killed.</summary>
    public void ThrowIfKilled()
    {
        if (Volatile.Read(ref _killSignal) != 0)
        {
            throw new OperationCanceledException($"container {_id} killed");
        }
    }

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken ct)
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
        if (_stdin is not null)
        {
            _pump = new Thread(PumpStdin, 64 << 10) { IsBackground = true, Name = $"stdin {_id}" };
            _pump.Start();
        }
        new Thread(Run, ThreadStackSize) { IsBackground = true, Name = $"wasm {_id}" }.Start();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Kill(int signal)
    {
        bool started;
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
            if (_killSignal == 0)
            {
                _killSignal = signal;
            }
            started = _started;
        }
        HostIo.Signal(StopFd);
        if (!started)
        {
            Finish(128 + signal);
            return;
        }
        // Every store reaches its deadline now; the others' callbacks just extend theirs.
        _host.Engine.IncrementEpoch();
        bool arm;
        lock (_gate)
        {
            arm = !_graceArmed;
            _graceArmed = true;
        }
        if (arm)
        {
            _ = DetachAfterGraceAsync();
        }
    }

    // A guest still running after the grace is inside a host call that ignores the kill: the task ends without it.
    private async Task DetachAfterGraceAsync()
    {
        try
        {
            await _exited.Task.WaitAsync(KillGrace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Detach();
        }
    }

    private void Detach()
    {
        int code;
        lock (_gate)
        {
            if (_finished || _guestReturned)
            {
                return;
            }
            _finished = true;
            _detached = true;
            _memory = null;
            code = 128 + (_killSignal > 0 ? _killSignal : SigKill);
            if (_tid > 0)
            {
                Volatile.Write(ref _cpuNanosAtExit, ThreadCpuTime.Nanos(_tid));
            }
        }
        ShimLog.Info($"container {_id}: the guest did not stop within {KillGrace.TotalMilliseconds} ms of the kill (blocked in a host call); detached, its exit published");
        SilenceOutput();
        _pump?.Join(TimeSpan.FromSeconds(2));
        _host.InstanceEnded();
        _exited.TrySetResult(new ExitStatus(code, DateTimeOffset.UtcNow));
    }

    // The guest's descriptors keep their numbers (its thread may still use them) but point at /dev/null: nothing it
    // writes later goes anywhere, and the container's FIFO readers see EOF.
    private void SilenceOutput()
    {
        lock (_output)
        {
            _silenced = true;
            HostIo.Silence([FdOf(_stdout), FdOf(_stderr)]);
        }
    }

    private static int FdOf(SafeFileHandle? handle) => handle is null ? -1 : (int)handle.DangerousGetHandle();

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
            // Never reached while the kill's grace works; Delete still ends, with the guest detached.
            Detach();
        }
        lock (_gate)
        {
            _deleted = true;
            // A detached guest's thread may still poll the stop eventfd by number: it closes it when it returns.
            if (!_detached || _guestReturned)
            {
                CloseStopFd();
            }
        }
    }

    private void CloseStopFd()
    {
        if (!_stopClosed)
        {
            _stopClosed = true;
            HostIo.Close(StopFd);
        }
    }

    /// <inheritdoc/>
    public Any Stats()
    {
        ulong usage;
        long cpu;
        lock (_gate)
        {
            // Read from another thread than the guest's: only the memory's current size, a single word.
            usage = _memory is { } m && !_finished ? (ulong)m.GetLength() : 0;
            cpu = Volatile.Read(ref _cpuNanosAtExit) is >= 0 and var atExit ? atExit
                : _tid > 0 ? ThreadCpuTime.Nanos(_tid) : 0;
        }
        var limit = Volatile.Read(ref _memoryLimit);
        var (periods, throttled, throttledNs) = _cpu.Throttling();
        return EngineMetrics.Pack(new EngineUsage(
            MemoryUsage: usage,
            MemoryLimit: limit > 0 ? (ulong)limit : 0,
            CpuNanos: (ulong)cpu,
            Periods: periods,
            ThrottledPeriods: throttled,
            ThrottledNanos: throttledNs));
    }

    /// <summary>
    /// New limits: <c>memory.limit</c> becomes the store's memory limit (-1 or 0 removes it) and
    /// <c>cpu.quota</c>/<c>cpu.period</c> the share of one CPU the guest's thread may use. What an engine cannot
    /// change is ignored: a lower memory limit keeps what the guest already has (linear memory never shrinks; only
    /// growth is refused), the pooling allocator's slot size caps any limit, and CPU shares, cpusets, pids and
    /// swap have no meaning for one thread of the daemon.
    /// </summary>
    public void Update(Any resources, IReadOnlyDictionary<string, string> annotations)
    {
        var update = CgroupResources.Unpack(resources, _id);
        var kick = false;
        lock (_gate)
        {
            if (_finished)
            {
                throw new ShimException(StatusCode.NotFound, $"update task {_id}: the container has exited");
            }
            if (update.Memory?.Limit is { } limit)
            {
                var value = limit > 0 ? limit : 0;
                Volatile.Write(ref _memoryLimit, value);
                if (_started)
                {
                    // Applied by the guest's own thread at its next epoch deadline, which the kick below brings now.
                    Volatile.Write(ref _pendingMemoryLimit, value);
                    kick = true;
                }
                else
                {
                    ApplyMemoryLimit(value);
                }
            }
            _cpu.Set(update.Cpu);
        }
        if (kick)
        {
            _host.Engine.IncrementEpoch();
        }
        ShimLog.Debug($"container {_id}: memory limit {Volatile.Read(ref _memoryLimit)}, cpu quota {_cpu.QuotaMicros}/{_cpu.PeriodMicros} us");
    }

    /// <summary>Applies a memory limit Update left for the guest's thread; called on that thread only (its epoch
    /// deadline callback, our poll_oneoff).</summary>
    internal void ApplyPendingLimits()
    {
        var pending = Interlocked.Exchange(ref _pendingMemoryLimit, NoPendingLimit);
        if (pending != NoPendingLimit)
        {
            ApplyMemoryLimit(pending);
        }
    }

    private void ApplyMemoryLimit(long limit)
    {
        if (_store is { } store)
        {
            SetStoreLimits(store, _shape, limit);
        }
    }

    /// <summary>
    /// The store's limits for a container memory limit (0: none): memories, tables and instances capped at what the
    /// binary declares, so the limit, split among them (<see cref="StoreShape.Budget"/>), covers the whole store.
    /// </summary>
    internal static void SetStoreLimits(Store store, StoreShape shape, long limit)
    {
        var (memorySize, tableElements) = shape.Budget(limit > 0 ? limit : null);
        store.SetLimits(memorySize: memorySize, tableElements: tableElements, instances: shape.Instances,
            tables: shape.Tables, memories: shape.Memories);
    }

    /// <summary>
    /// Keeps the guest's thread within its CPU quota, on that thread at every epoch deadline: the CPU time it used
    /// since the last deadline is charged to the quota, and a pause the quota asks for is one a kill ends at once.
    /// </summary>
    private void Throttle()
    {
        var cpu = ThreadCpuTime.Nanos();
        var pauseNs = _cpu.Charge(cpu - _lastCpuNs);
        _lastCpuNs = cpu;
        if (pauseNs > 0)
        {
            HostIo.WaitFor(-1, HostIo.POLLIN, StopFd, (int)Math.Min((pauseNs + 999_999) / 1_000_000, int.MaxValue));
            ThrowIfKilled();
        }
    }

    private unsafe void Prepare(CompiledProgram program)
    {
        var wasi = WasiSetup.For(_ctx);
        if (_stdin is not null)
        {
            var fds = stackalloc int[2];
            if (HostIo.Pipe2(fds, HostIo.O_CLOEXEC) != 0)
            {
                throw new ShimException(StatusCode.Internal, $"container {_id}: pipe2: errno {Marshal.GetLastPInvokeError()}");
            }
            (_stdinRead, _stdinWrite) = (fds[0], fds[1]);
            HostIo.SetNonBlocking(_stdinWrite);
            // Wasmtime opens the pipe by name and reads it on its own; we feed it from the container's stdin and
            // close our end to end a read it is blocked in.
            wasi.WithStandardInput($"/proc/{Environment.ProcessId}/fd/{_stdinRead}");
        }
        else
        {
            wasi.WithStandardInput("/dev/null");
        }
        var stdoutFd = OutputFd(_stdout);
        var stderrFd = OutputFd(_stderr);
        wasi.WithStandardOutputCallback(data => WriteOutput(stdoutFd, data));
        wasi.WithStandardErrorCallback(data => WriteOutput(stderrFd, data));

        var store = new Store(_host.Engine, this);
        _store = store;
        SetStoreLimits(store, _shape, _memoryLimit);
        store.SetWasiConfiguration(wasi);
        store.SetEpochDeadline(1);
        store.SetEpochDeadlineCallback(OnEpochDeadline);
        if (program.Component is { } component)
        {
            PrepareComponent(store, component, program.RunExport!);
            return;
        }
        Instance instance;
        try
        {
            instance = _host.Instantiate(store, program.Module!);
        }
        catch (WasmtimeException e)
        {
            throw new ShimException(_memoryLimit > 0 && e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) ? StatusCode.ResourceExhausted : StatusCode.InvalidArgument,
                $"container {_id}: instantiating {_ctx.Entrypoint.Name}: {e.Message.Split('\n')[0]}", e);
        }
        var start = instance.GetAction(_ctx.Entrypoint.Function)
            ?? throw new EntrypointException(EntrypointError.NoSuchFunction, _ctx.Entrypoint.Name,
                $"\"{UntrustedText.Excerpt(_ctx.Entrypoint.Function)}\" is not a function without parameters and results");
        _run = () =>
        {
            start();
            return 0;
        };
        _memory = instance.GetMemory("memory");
    }

    // A command component: wasi:cli/run's run, whose result<_, _> err is exit status 1. WASI 0.2's stdio and polls
    // are Wasmtime's own, so a kill reaches such a guest through the epoch deadline while it runs wasm code.
    private void PrepareComponent(Store store, Component component, string runExport)
    {
        ComponentInstance instance;
        try
        {
            instance = _host.Instantiate(store, component);
        }
        catch (WasmtimeException e)
        {
            throw new ShimException(_memoryLimit > 0 && e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) ? StatusCode.ResourceExhausted : StatusCode.InvalidArgument,
                $"container {_id}: instantiating {_ctx.Entrypoint.Name}: {e.Message.Split('\n')[0]}", e);
        }
        var run = instance.GetFunction(runExport, "run")
            ?? throw new EntrypointException(EntrypointError.NoSuchFunction, _ctx.Entrypoint.Name,
                $"{UntrustedText.Excerpt(runExport)} exports no function named \"run\"");
        _run = () => run.Call() is { Kind: ComponentValueKind.Result, IsOk: false } ? 1 : 0;
    }

    private static int OutputFd(SafeFileHandle? handle)
    {
        if (handle is null)
        {
            return -1;
        }
        var fd = (int)handle.DangerousGetHandle();
        // Our own open of the FIFO (the kit's): non-blocking so a write can wait for room and for a kill at once.
        HostIo.SetNonBlocking(fd);
        return fd;
    }

    private void WriteOutput(int fd, ReadOnlySpan<byte> data)
    {
        lock (_output)
        {
            if (fd >= 0 && !_silenced)
            {
                HostIo.WriteAll(fd, data, StopFd);
            }
        }
    }

    private ulong OnEpochDeadline(Store store)
    {
        ThrowIfKilled();
        ApplyPendingLimits();
        Throttle();
        return 1;
    }

    private void Run()
    {
        lock (_gate)
        {
            _tid = HostIo.GetTid();
        }
        _lastCpuNs = ThreadCpuTime.Nanos();
        // An Update between Start and this thread's first instruction.
        ApplyPendingLimits();
        int code;
        try
        {
            code = _run!();
            // A kill that ended a host call (EOF on stdin) can let the guest return before its next epoch check:
            // the task still ends as killed.
            if (Volatile.Read(ref _killSignal) is var signal and > 0)
            {
                code = 128 + signal;
            }
        }
        catch (Exception e)
        {
            code = ExitCodeOf(e);
        }
        bool detached;
        lock (_gate)
        {
            _guestReturned = true;
            detached = _detached;
            if (!detached)
            {
                Volatile.Write(ref _cpuNanosAtExit, ThreadCpuTime.Nanos());
            }
        }
        if (!detached)
        {
            Finish(code);
            return;
        }
        // The host call a detached guest was in has returned: what it kept is released now.
        Release();
        lock (_gate)
        {
            if (_deleted)
            {
                CloseStopFd();
            }
        }
        ShimLog.Info($"container {_id}: the detached guest's host call returned; its store is released");
    }

    private int ExitCodeOf(Exception e)
    {
        if (Volatile.Read(ref _killSignal) is var signal and > 0)
        {
            return 128 + signal;
        }
        if (GuestExit.Of(e, _ctx.Entrypoint.Name, out var line) is { } code)
        {
            if (line is not null)
            {
                Report(line + "\n");
            }
            return code;
        }
        Report($"wasmtime: internal error running {_ctx.Entrypoint.Name}: {e.Message}\n");
        return ExitCodes.InternalError;
    }

    private void Report(string text)
    {
        try
        {
            WriteOutput(FdOf(_stderr), System.Text.Encoding.UTF8.GetBytes(text));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }
    }

    private void PumpStdin()
    {
        var source = (int)_stdin!.DangerousGetHandle();
        var buffer = new byte[16 << 10];
        try
        {
            while (HostIo.WaitFor(source, HostIo.POLLIN, StopFd))
            {
                int n;
                unsafe
                {
                    fixed (byte* p = buffer)
                    {
                        n = (int)HostIo.Read(source, p, (nuint)buffer.Length);
                    }
                }
                if (n < 0 && Marshal.GetLastPInvokeError() is HostIo.EINTR or HostIo.EAGAIN)
                {
                    continue;
                }
                if (n <= 0)
                {
                    break;
                }
                HostIo.WriteAll(_stdinWrite, buffer.AsSpan(0, n), StopFd);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }
        finally
        {
            // EOF for the guest: its stdin ended, or the instance is stopping.
            CloseStdinWrite();
        }
    }

    private void CloseStdinWrite()
    {
        var fd = Interlocked.Exchange(ref _stdinWrite, -1);
        if (fd >= 0)
        {
            HostIo.Close(fd);
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
            _memory = null;
        }
        HostIo.Signal(StopFd);
        // The pump leaves at once on the stop signal; it must be gone before its descriptors are closed.
        _pump?.Join(TimeSpan.FromSeconds(2));
        Release();
        if (started)
        {
            _host.InstanceEnded();
        }
        // Every byte the guest wrote has gone to the FIFOs (the callbacks write synchronously) and they are closed.
        _exited.TrySetResult(new ExitStatus(code, DateTimeOffset.UtcNow));
    }

    private void Release()
    {
        // Called once the guest's thread is done (or was never started).
        if (Interlocked.Exchange(ref _holdsThread, 0) == 1)
        {
            _host.GuestThreads.Release();
        }
        CloseStdinWrite();
        _store?.Dispose();
        _store = null;
        _programLease.Dispose();
        // The preopens' descriptors (the engine opened its own from them when the store was made).
        _ctx.Dispose();
        _run = null;
        var read = Interlocked.Exchange(ref _stdinRead, -1);
        if (read >= 0)
        {
            HostIo.Close(read);
        }
        _stdin?.Dispose();
        _stdout?.Dispose();
        _stderr?.Dispose();
        _stdin = _stdout = _stderr = null;
    }
}
