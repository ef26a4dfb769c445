using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using static Containerd.Shim.Wasmtime.Http.ComponentApi;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Serves a wasi:http/proxy component: the host side of wasi:http/types, wasi:io, the clocks, random and the cli
/// streams, written in C# as host-defined resources through libwasmtime's component C API (decision record
/// docs/decisions/0001-wasi-http-route.md). One compiled component and one linker serve every request; each request
/// gets a fresh store and instance on a thread of its own.
/// </summary>
internal sealed unsafe class ProxyHost : IProxyProgram
{
    internal delegate void HostFunction(ProxyRequest request, IntPtr context, ReadOnlySpan<Val> args, Span<Val> results);

    /// <summary>Bytes of each pooled linear memory reset in place between requests (WASI_HTTP_KEEP_RESIDENT).</summary>
    private const long KeepResident = 0;

    // WASI_HTTP_PROFILE=1 times the phases of every request and prints their means when the host is disposed.
    private static readonly bool Profile = Environment.GetEnvironmentVariable("WASI_HTTP_PROFILE") == "1";
    private static long _pThread, _pStore, _pInstantiate, _pCall, _pPostReturn, _pDelete, _pCount;

    /// <summary>Guest stacks: the JS engines inside proxy components recurse deeply.</summary>
    private const int GuestThreadStack = 8 * 1024 * 1024;

    // Host functions are found by index from the callback's data pointer; the table is process-wide because the
    // functions themselves hold no state (it lives in the store's ProxyRequest).
    private static readonly List<HostFunction> Functions = [];
    private static readonly List<string> FunctionNames = [];

    // WASI_HTTP_TRACE=1 logs every host call to stderr: the way to see what a component expects of this host.
    internal static readonly bool Trace = Environment.GetEnvironmentVariable("WASI_HTTP_TRACE") == "1";
    private static readonly object FunctionsLock = new();

    private readonly IntPtr _engine;
    private readonly IntPtr _component;
    private readonly IntPtr _linker;
    private readonly IntPtr _handleIndex;
    private readonly GuestThreads _threads = new(GuestThreadStack, "wasi-http guest");
    // The owner's reference (until Dispose) and one per request whose guest has not returned.
    private int _references = 1;
    private int _disposed;
    private readonly bool _ownsEngine;
    private readonly bool _epochInterruption;
    // Advances the epoch of an engine this host owns; the shared daemon's engine has a ticker of its own.
    private readonly Timer? _ticker;

    /// <summary>How often an owned engine's epoch advances: how late a guest notices its request was aborted.</summary>
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);

    private ProxyHost(IntPtr engine, IntPtr component, bool ownsEngine, bool epochInterruption)
    {
        _engine = engine;
        _component = component;
        _ownsEngine = ownsEngine;
        _epochInterruption = epochInterruption;
        if (ownsEngine && epochInterruption)
        {
            _ticker = new Timer(static e => wasmtime_engine_increment_epoch((IntPtr)e!), engine, TickInterval, TickInterval);
        }
        _linker = wasmtime_component_linker_new(engine);
        try
        {
            DefineImports(wasmtime_component_linker_root(_linker), ImportNames(engine, component));
            // What the proxy world allows but this host does not provide (the filesystem) traps if called.
            Check(wasmtime_component_linker_define_unknown_imports_as_traps(_linker, component), "linking the proxy imports");
            _handleIndex = FindHandle(component)
                ?? throw new InvalidOperationException("the component exports no wasi:http/incoming-handler@0.2.x handle function");
        }
        catch
        {
            wasmtime_component_linker_delete(_linker);
            throw;
        }
    }

    /// <summary>Compiles a component (wasm bytes) or loads a precompiled one (serialized by this engine), on an engine
    /// with the default <see cref="ProxyEngineOptions"/>.</summary>
    public static ProxyHost Load(ReadOnlySpan<byte> bytes, bool precompiled = false) =>
        precompiled ? Deserialize(bytes, ProxyEngineOptions.Default) : Compile(bytes, ProxyEngineOptions.Default);

    /// <summary>Compiles a component (wasm bytes).</summary>
    public static ProxyHost Compile(ReadOnlySpan<byte> bytes, ProxyEngineOptions options)
    {
        fixed (byte* p = bytes)
        {
            var (data, length) = ((IntPtr)p, (nuint)bytes.Length);
            return Create(options, (IntPtr engine, out IntPtr component) => wasmtime_component_new(engine, (byte*)data, length, out component));
        }
    }

    /// <summary>Loads an artifact <see cref="Serialize"/> wrote with the same engine options; Wasmtime refuses one
    /// from another version or configuration (InvalidOperationException).</summary>
    public static ProxyHost Deserialize(ReadOnlySpan<byte> bytes, ProxyEngineOptions options)
    {
        fixed (byte* p = bytes)
        {
            var (data, length) = ((IntPtr)p, (nuint)bytes.Length);
            return Create(options, (IntPtr engine, out IntPtr component) => wasmtime_component_deserialize(engine, (byte*)data, length, out component));
        }
    }

    /// <summary>Like <see cref="Deserialize"/> from a file, which Wasmtime memory-maps: instance processes serving one
    /// cached component share its code pages.</summary>
    public static ProxyHost DeserializeFile(string path, ProxyEngineOptions options) =>
        Create(options, (IntPtr engine, out IntPtr component) => wasmtime_component_deserialize_file(engine, path, out component));

    private delegate IntPtr LoadComponent(IntPtr engine, out IntPtr component);

    private static ProxyHost Create(ProxyEngineOptions options, LoadComponent load)
    {
        var config = wasm_config_new();
        wasmtime_config_cranelift_opt_level_set(config, (byte)options.OptLevel);
        // An instance maps the component's initial memory copy-on-write instead of copying it (Wasmtime's default,
        // said explicitly because everything below relies on it).
        wasmtime_config_memory_init_cow_set(config, true);
        // A guest looping in wasm code must stop when its client goes away or the drain deadline passes: it traps at
        // the next epoch tick after its request was aborted (OnEpochDeadline).
        wasmtime_config_epoch_interruption_set(config, true);
        if (options.Pooling)
        {
            // Pooled instance slots are reused instead of mapped and unmapped per request (munmap with TLB
            // shootdowns across the guest threads was a large part of the kernel time measured, docs/benchmarks.md).
            // Keeping memory resident (reset by memset instead of madvise) cost more CPU than the page faults it
            // saves for the componentize-js echo, so it is off unless WASI_HTTP_KEEP_RESIDENT asks for it.
            var pooling = wasmtime_pooling_allocation_config_new();
            var keep = long.TryParse(Environment.GetEnvironmentVariable("WASI_HTTP_KEEP_RESIDENT"), out var resident) ? resident : KeepResident;
            wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pooling, (nuint)keep);
            wasmtime_pooling_allocation_config_table_keep_resident_set(pooling, (nuint)keep);
            wasmtime_pooling_allocation_strategy_set(config, pooling);
            wasmtime_pooling_allocation_config_delete(pooling);
        }
        // The engine takes the config over, also when it fails.
        var engine = wasm_engine_new_with_config(config);
        try
        {
            Check(load(engine, out var component), "loading the component");
            try
            {
                return new ProxyHost(engine, component, ownsEngine: true, epochInterruption: true);
            }
            catch
            {
                wasmtime_component_delete(component);
                throw;
            }
        }
        catch
        {
            wasm_engine_delete(engine);
            throw;
        }
    }

    /// <summary>
    /// Compiles a component on an engine someone else owns and outlives this host (the shared-mode daemon's, which
    /// has epoch interruption on: every store then gets a deadline callback that traps a killed container's guests).
    /// </summary>
    public static ProxyHost LoadOn(IntPtr engine, ReadOnlySpan<byte> bytes, bool epochInterruption)
    {
        IntPtr component;
        fixed (byte* p = bytes)
        {
            Check(wasmtime_component_new(engine, p, (nuint)bytes.Length, out component), "loading the component");
        }
        try
        {
            return new ProxyHost(engine, component, ownsEngine: false, epochInterruption);
        }
        catch
        {
            wasmtime_component_delete(component);
            throw;
        }
    }

    /// <summary>Like <see cref="LoadOn"/> from an artifact file <see cref="Serialize"/> wrote on an engine of the same
    /// settings, which Wasmtime memory-maps (InvalidOperationException when it refuses the artifact).</summary>
    public static ProxyHost DeserializeFileOn(IntPtr engine, string path, bool epochInterruption)
    {
        Check(wasmtime_component_deserialize_file(engine, path, out var component), "loading the compiled component");
        try
        {
            return new ProxyHost(engine, component, ownsEngine: false, epochInterruption);
        }
        catch
        {
            wasmtime_component_delete(component);
            throw;
        }
    }

    /// <summary>The compiled component, for a cache.</summary>
    public byte[] Serialize()
    {
        ByteVec vec;
        Check(wasmtime_component_serialize(_component, &vec), "serializing the component");
        var bytes = new ReadOnlySpan<byte>((void*)vec.Data, (int)vec.Size).ToArray();
        wasm_byte_vec_delete(&vec);
        return bytes;
    }

    /// <summary>
    /// Answers one request: instantiates the component in a fresh store on a thread of its own and calls its
    /// incoming-handler; completes when the guest returns (the response is complete by then).
    /// </summary>
    public Task HandleAsync(IProxyExchange exchange, ProxyGuestContext guest)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queued = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _references);
        _threads.Run(() =>
        {
            Interlocked.Add(ref _pThread, Stopwatch.GetTimestamp() - queued);
            try
            {
                Run(new ProxyRequest(exchange, guest));
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
            finally
            {
                Unreference();
            }
        });
        return done.Task;
    }

    /// <summary>
    /// Releases the compiled component, its linker and (when it owns it) the engine, once no request's guest still
    /// runs: a guest stuck in a host call past its container's end keeps them until it returns.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Unreference();
        }
    }

    private void Unreference()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            Release();
        }
    }

    private void Run(ProxyRequest request)
    {
        var t0 = Stopwatch.GetTimestamp();
        var gc = GCHandle.Alloc(request);
        var store = wasmtime_store_new(_engine, GCHandle.ToIntPtr(gc), IntPtr.Zero);
        try
        {
            var context = wasmtime_store_context(store);
            if (request.Guest.StoreLimits is { } limits)
            {
                var (memorySize, tableElements) = limits.Shape.Budget(limits.MemoryLimit > 0 ? limits.MemoryLimit : null);
                wasmtime_store_limiter(store, memorySize ?? -1, tableElements is { } elements ? elements : -1, limits.Shape.Instances, limits.Shape.Tables,
                    limits.Shape.Memories);
            }
            if (_epochInterruption)
            {
                // The engine's epoch advances on a timer: without a deadline the guest would trap at once.
                wasmtime_store_epoch_deadline_callback(store, &OnEpochDeadline, GCHandle.ToIntPtr(gc), IntPtr.Zero);
                wasmtime_context_set_epoch_deadline(context, 1);
            }
            var t1 = Stopwatch.GetTimestamp();
            Check(wasmtime_component_linker_instantiate(_linker, context, _component, out var instance), "instantiating the component");
            var t2 = Stopwatch.GetTimestamp();
            Interlocked.Add(ref _pStore, t1 - t0);
            Interlocked.Add(ref _pInstantiate, t2 - t1);
            Interlocked.Increment(ref _pCount);
            ComponentFunc func;
            if (!wasmtime_component_instance_get_func(&instance, context, _handleIndex, out func))
            {
                throw new InvalidOperationException("the incoming-handler export is not a function");
            }

            var incoming = request.Exchange;
            var headers = new Fields([.. incoming.RequestHeaders], immutable: true);
            var incomingRequest = new IncomingRequest
            {
                Method = incoming.Method,
                PathWithQuery = incoming.PathWithQuery,
                Scheme = incoming.Scheme,
                Authority = incoming.Authority,
                Headers = headers,
                Body = incoming.RequestBody,
                Trailers = () => incoming.RequestTrailers() is { } trailers ? new Fields([.. trailers], immutable: true) : null,
            };
            var args = stackalloc Val[2];
            args[0] = Resource(context, ResourceTypes.IncomingRequest, request.Table.Add(incomingRequest));
            args[1] = Resource(context, ResourceTypes.ResponseOutparam, request.Table.Add(new ResponseOutparam()));
            try
            {
                var t3 = Stopwatch.GetTimestamp();
                var error = wasmtime_component_func_call(&func, context, args, 2, null, 0);
                Interlocked.Add(ref _pCall, Stopwatch.GetTimestamp() - t3);
                if (error != IntPtr.Zero)
                {
                    var message = TakeMessage(error);
                    if (request.ResponseStarted || request.Guest.Killed)
                    {
                        // Too late for a status, or the container was killed (its clients see the connection end, as
                        // when a process dies, never a 500 that raced the kill): the server aborts the response.
                        throw new GuestException(message);
                    }
                    request.Guest.Report($"wasi:http: {incoming.Method} {incoming.PathWithQuery}: {message}");
                    Answer(request, 500, $"the component failed: {FirstLine(message)}\n");
                    request.FlushBody();
                    return;
                }
                var t4 = Stopwatch.GetTimestamp();
                Check(wasmtime_component_func_post_return(&func, context), "post-return");
                Interlocked.Add(ref _pPostReturn, Stopwatch.GetTimestamp() - t4);
            }
            finally
            {
                wasmtime_component_resource_any_delete((IntPtr)args[0].A);
                wasmtime_component_resource_any_delete((IntPtr)args[1].A);
            }

            if (!request.ResponseStarted)
            {
                Answer(request, 500, (request.ResponseError ?? "the component returned without setting a response") + "\n");
            }
            request.FlushBody();
        }
        finally
        {
            // The CPU time since the last tick counts too; the request is over, so nothing pauses for it.
            request.ChargeCpu(mayPause: false);
            var t5 = Stopwatch.GetTimestamp();
            wasmtime_store_delete(store);
            Interlocked.Add(ref _pDelete, Stopwatch.GetTimestamp() - t5);
            gc.Free();
            request.DisposeOwned();
        }
    }

    /// <summary>A host-made plain-text response, for requests the guest could not answer.</summary>
    private static void Answer(ProxyRequest request, ushort status, string message)
    {
        var fields = new Fields([new("content-type", "text/plain"u8.ToArray())], immutable: true);
        request.SetResponse(new OutgoingResponse(fields) { Status = status });
        request.WriteBody(Encoding.UTF8.GetBytes(message));
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0];

    private void Release()
    {
        if (Profile && _pCount > 0)
        {
            double Ms(long t) => t * 1000.0 / Stopwatch.Frequency / _pCount;
            Console.Error.WriteLine($"wasi:http profile, mean ms of {_pCount} requests (wall): waiting for a thread {Ms(_pThread):F3}, " +
                $"store {Ms(_pStore):F3}, instantiate {Ms(_pInstantiate):F3}, handle {Ms(_pCall):F3}, post-return {Ms(_pPostReturn):F3}, store delete {Ms(_pDelete):F3}");
        }
        // Waits for a tick in progress: the engine must outlive it.
        using (var stopped = new ManualResetEvent(false))
        {
            if (_ticker is { } ticker && ticker.Dispose(stopped))
            {
                stopped.WaitOne();
            }
        }
        wasmtime_component_export_index_delete(_handleIndex);
        wasmtime_component_linker_delete(_linker);
        wasmtime_component_delete(_component);
        if (_ownsEngine)
        {
            wasm_engine_delete(_engine);
        }
    }

    /// <summary>Whether a component exports wasi:http/incoming-handler (0.2.x), i.e. is a proxy component.</summary>
    public static bool IsProxy(IntPtr component)
    {
        if (FindHandle(component) is { } index)
        {
            wasmtime_component_export_index_delete(index);
            return true;
        }
        return false;
    }

    private static IntPtr? FindHandle(IntPtr component)
    {
        // Exports are looked up by exact name; WASI 0.2 has had patch releases 0 to 12 so far.
        for (var patch = 20; patch >= 0; patch--)
        {
            var name = Encoding.UTF8.GetBytes($"wasi:http/incoming-handler@0.2.{patch}");
            IntPtr iface;
            fixed (byte* p = name)
            {
                iface = wasmtime_component_get_export_index(component, IntPtr.Zero, p, (nuint)name.Length);
            }
            if (iface == IntPtr.Zero)
            {
                continue;
            }
            try
            {
                fixed (byte* p = "handle"u8)
                {
                    var handle = wasmtime_component_get_export_index(component, iface, p, 6);
                    return handle == IntPtr.Zero ? null : handle;
                }
            }
            finally
            {
                wasmtime_component_export_index_delete(iface);
            }
        }
        return null;
    }

    /// <summary>The names the component imports, e.g. wasi:io/poll@0.2.12.</summary>
    private static List<string> ImportNames(IntPtr engine, IntPtr component)
    {
        var names = new List<string>();
        var type = wasmtime_component_type(component);
        try
        {
            var count = wasmtime_component_type_import_count(type, engine);
            // wasmtime_component_item_t: a kind byte and a union of at most two words (room to spare).
            var item = stackalloc byte[256];
            for (nuint n = 0; n < count; n++)
            {
                if (wasmtime_component_type_import_nth(type, engine, n, out var name, out var length, item))
                {
                    names.Add(Encoding.UTF8.GetString(name, (int)length));
                    // The item's type is not freed: wasmtime_component_item_delete crashed on what Wasmtime 50 wrote
                    // here (its layout differs from the header this binding follows); a few small boxes leak per
                    // component load, once per instance process.
                }
            }
        }
        finally
        {
            wasmtime_component_type_delete(type);
        }
        return names;
    }

    // ---- linking --------------------------------------------------------------------------------------------

    /// <summary>
    /// Each interface is defined under every 0.2.x version the component imports it at (the echo component
    /// imports wasi:http at 0.2.10 and wasi:io at 0.2.12): all 0.2 releases have the same shape for what is used here.
    /// </summary>
    private static void DefineImports(IntPtr root, List<string> imports)
    {
        void Instance(IntPtr parent, string unversioned, Action<IntPtr> define)
        {
            foreach (var name in imports.Where(n => n.StartsWith(unversioned + "@0.2.", StringComparison.Ordinal)))
            {
                ProxyHost.Instance(parent, name, define);
            }
        }

        Instance(root, "wasi:io/poll", i =>
        {
            Res(i, "pollable", ResourceTypes.Pollable);
            Func(i, "[method]pollable.ready", (r, c, a, res) => res[0] = Bool(r.Table.Get<Pollable>(ReadRep(c, a[0])).Ready));
            Func(i, "[method]pollable.block", (r, c, a, res) => r.Table.Get<Pollable>(ReadRep(c, a[0])).Block(r.StopToken));
            Func(i, "poll", Poll);
        });
        Instance(root, "wasi:io/error", i =>
        {
            Res(i, "error", ResourceTypes.IoError);
            Func(i, "[method]error.to-debug-string", (r, c, a, res) => res[0] = ComponentApi.String(r.Table.Get<IoError>(ReadRep(c, a[0])).Message));
        });
        Instance(root, "wasi:io/streams", i =>
        {
            Res(i, "input-stream", ResourceTypes.InputStream);
            Res(i, "output-stream", ResourceTypes.OutputStream);
            Res(i, "error", ResourceTypes.IoError);
            Res(i, "pollable", ResourceTypes.Pollable);
            Func(i, "[method]input-stream.read", Read);
            Func(i, "[method]input-stream.blocking-read", Read);
            Func(i, "[method]input-stream.skip", Skip);
            Func(i, "[method]input-stream.blocking-skip", Skip);
            Func(i, "[method]input-stream.subscribe", ReadyPollable);
            Func(i, "[method]output-stream.check-write", (r, c, a, res) =>
                res[0] = r.Table.Get<OutputStream>(ReadRep(c, a[0])).Closed ? Err(Variant("closed")) : Ok(U64(WritePermit)));
            Func(i, "[method]output-stream.write", (r, c, a, res) => res[0] = Write(r, c, a[0], ReadBytes(a[1]), flush: false));
            Func(i, "[method]output-stream.blocking-write-and-flush", (r, c, a, res) => res[0] = Write(r, c, a[0], ReadBytes(a[1]), flush: true));
            Func(i, "[method]output-stream.flush", (r, c, a, res) => res[0] = Write(r, c, a[0], [], flush: true));
            Func(i, "[method]output-stream.blocking-flush", (r, c, a, res) => res[0] = Write(r, c, a[0], [], flush: true));
            Func(i, "[method]output-stream.subscribe", ReadyPollable);
            Func(i, "[method]output-stream.write-zeroes", (r, c, a, res) => res[0] = Write(r, c, a[0], Zeroes(a[1].A), flush: false));
            Func(i, "[method]output-stream.blocking-write-zeroes-and-flush", (r, c, a, res) => res[0] = Write(r, c, a[0], Zeroes(a[1].A), flush: true));
            Func(i, "[method]output-stream.splice", Splice);
            Func(i, "[method]output-stream.blocking-splice", Splice);
        });
        Instance(root, "wasi:clocks/monotonic-clock", i =>
        {
            Res(i, "pollable", ResourceTypes.Pollable);
            Func(i, "now", (r, c, a, res) => res[0] = U64(MonotonicNanos()));
            Func(i, "resolution", (r, c, a, res) => res[0] = U64(Math.Max(1, 1_000_000_000UL / (ulong)Stopwatch.Frequency)));
            Func(i, "subscribe-instant", (r, c, a, res) =>
                res[0] = Resource(c, ResourceTypes.Pollable, r.Table.Add(new Pollable(Math.Max(1, TicksOf(a[0].A))))));
            Func(i, "subscribe-duration", (r, c, a, res) =>
                res[0] = Resource(c, ResourceTypes.Pollable, r.Table.Add(new Pollable(Math.Max(1, TicksOf(MonotonicNanos() + a[0].A))))));
        });
        Instance(root, "wasi:clocks/wall-clock", i =>
        {
            Func(i, "now", (r, c, a, res) =>
            {
                var ns = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
                res[0] = Record(("seconds", U64((ulong)(ns / 1_000_000_000))), ("nanoseconds", U32((uint)(ns % 1_000_000_000))));
            });
            Func(i, "resolution", (r, c, a, res) => res[0] = Record(("seconds", U64(0)), ("nanoseconds", U32(100))));
        });
        Instance(root, "wasi:random/random", i =>
        {
            Func(i, "get-random-bytes", (r, c, a, res) => res[0] = ByteList(RandomNumberGenerator.GetBytes((int)Math.Min(a[0].A, 1 << 20))));
            Func(i, "get-random-u64", (r, c, a, res) => res[0] = U64(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8))));
        });
        Instance(root, "wasi:random/insecure", i =>
        {
            Func(i, "get-insecure-random-bytes", (r, c, a, res) => res[0] = ByteList(RandomNumberGenerator.GetBytes((int)Math.Min(a[0].A, 1 << 20))));
            Func(i, "get-insecure-random-u64", (r, c, a, res) => res[0] = U64((ulong)Random.Shared.NextInt64()));
        });
        Instance(root, "wasi:cli/stdin", i =>
        {
            Res(i, "input-stream", ResourceTypes.InputStream);
            Func(i, "get-stdin", (r, c, a, res) => res[0] = Resource(c, ResourceTypes.InputStream, r.Table.Add(new InputStream(null))));
        });
        Instance(root, "wasi:cli/stdout", i =>
        {
            Res(i, "output-stream", ResourceTypes.OutputStream);
            Func(i, "get-stdout", (r, c, a, res) => res[0] = Resource(c, ResourceTypes.OutputStream, r.Table.Add(new OutputStream(r.Guest.Stdout))));
        });
        Instance(root, "wasi:cli/stderr", i =>
        {
            Res(i, "output-stream", ResourceTypes.OutputStream);
            Func(i, "get-stderr", (r, c, a, res) => res[0] = Resource(c, ResourceTypes.OutputStream, r.Table.Add(new OutputStream(r.Guest.Stderr))));
        });
        Instance(root, "wasi:cli/terminal-input", i => Res(i, "terminal-input", ResourceTypes.TerminalInput));
        Instance(root, "wasi:cli/terminal-output", i => Res(i, "terminal-output", ResourceTypes.TerminalOutput));
        foreach (var (name, type) in new[] { ("stdin", ResourceTypes.TerminalInput), ("stdout", ResourceTypes.TerminalOutput), ("stderr", ResourceTypes.TerminalOutput) })
        {
            // Served containers have no terminal.
            Instance(root, $"wasi:cli/terminal-{name}", i =>
            {
                Res(i, type == ResourceTypes.TerminalInput ? "terminal-input" : "terminal-output", type);
                Func(i, $"get-terminal-{name}", (r, c, a, res) => res[0] = Option(null));
            });
        }
        Instance(root, "wasi:filesystem/types", i =>
        {
            Res(i, "descriptor", ResourceTypes.Descriptor);
            Res(i, "output-stream", ResourceTypes.OutputStream);
            Res(i, "input-stream", ResourceTypes.InputStream);
            Res(i, "error", ResourceTypes.IoError);
            Func(i, "filesystem-error-code", (r, c, a, res) =>
            {
                EndBorrow(c, a[0]);
                res[0] = Option(null);
            });
        });
        Instance(root, "wasi:filesystem/preopens", i =>
        {
            Res(i, "descriptor", ResourceTypes.Descriptor);
            // A proxy component gets no directories.
            Func(i, "get-directories", (r, c, a, res) => res[0] = List([]));
        });
        Instance(root, "wasi:http/types", HttpTypes.Define);
        Instance(root, "wasi:http/outgoing-handler", i =>
        {
            Res(i, "outgoing-request", ResourceTypes.OutgoingRequest);
            Res(i, "request-options", ResourceTypes.RequestOptions);
            Res(i, "future-incoming-response", ResourceTypes.FutureIncomingResponse);
            Func(i, "handle", HttpTypes.OutgoingHandle);
        });
    }

    private static ulong MonotonicNanos() => (ulong)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));

    private static long TicksOf(ulong nanos) => (long)(nanos * (Stopwatch.Frequency / 1_000_000_000.0));

    private static void ReadyPollable(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        EndBorrow(c, a[0]);
        res[0] = Resource(c, ResourceTypes.Pollable, r.Table.Add(new Pollable(0)));
    }

    /// <summary>
    /// A host function must take up every borrowed handle it is given (Wasmtime fails the call with "borrow
    /// handles still remain" otherwise), even one it has no use for.
    /// </summary>
    internal static void EndBorrow(IntPtr c, in Val borrowed) => ReadRep(c, borrowed);

    private static void Poll(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        var handles = ReadList(a[0]);
        var pollables = new Pollable[handles.Length];
        for (var n = 0; n < handles.Length; n++)
        {
            pollables[n] = r.Table.Get<Pollable>(ReadRep(c, handles[n]));
        }
        if (pollables.Length == 0)
        {
            throw new InvalidOperationException("poll of an empty list");
        }
        while (true)
        {
            var ready = new List<Val>();
            for (var n = 0; n < pollables.Length; n++)
            {
                if (pollables[n].Ready)
                {
                    ready.Add(U32((uint)n));
                }
            }
            if (ready.Count > 0)
            {
                res[0] = List([.. ready]);
                return;
            }
            Pollable.WaitAny(pollables, r.StopToken);
        }
    }

    private static void Read(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        if (ReadFrom(r, c, a[0], a[1].A, out var failed) is not { } bytes)
        {
            res[0] = failed;
            return;
        }
        res[0] = Ok(ByteList(bytes));
    }

    private static void Skip(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        if (ReadFrom(r, c, a[0], a[1].A, out var failed) is not { } bytes)
        {
            res[0] = failed;
            return;
        }
        res[0] = Ok(U64((ulong)bytes.Length));
    }

    /// <summary>A read of an input-stream: its bytes, or null and the stream-error to return.</summary>
    private static byte[]? ReadFrom(ProxyRequest r, IntPtr c, in Val self, ulong max, out Val failed)
    {
        failed = default;
        try
        {
            var bytes = r.Table.Get<InputStream>(ReadRep(c, self)).Read((int)Math.Min(max, int.MaxValue));
            if (bytes is null)
            {
                failed = Err(Variant("closed"));
            }
            return bytes;
        }
        catch (StreamFailure e)
        {
            failed = Err(Variant("last-operation-failed", Resource(c, ResourceTypes.IoError, r.Table.Add(new IoError(e.Message, e.Code)))));
            return null;
        }
    }

    private static void Splice(ProxyRequest r, IntPtr c, ReadOnlySpan<Val> a, Span<Val> res)
    {
        if (ReadFrom(r, c, a[1], a[2].A, out var failed) is not { } bytes)
        {
            EndBorrow(c, a[0]);
            res[0] = failed;
            return;
        }
        var written = Write(r, c, a[0], bytes, flush: false);
        res[0] = written.A == 0 ? written : Ok(U64((ulong)bytes.Length));
    }

    // What check-write permits: the most one write may carry (a write-zeroes past it would make the host allocate
    // what the guest names, up to 2^64 bytes, so it traps as the interface says a write past the permit does).
    private const int WritePermit = 1 << 20;

    private static byte[] Zeroes(ulong count) => count <= WritePermit
        ? new byte[count]
        : throw new InvalidOperationException($"write-zeroes of {count} bytes, past the {WritePermit} check-write permits");

    private static Val Write(ProxyRequest r, IntPtr c, in Val self, ReadOnlySpan<byte> bytes, bool flush)
    {
        var stream = r.Table.Get<OutputStream>(ReadRep(c, self));
        try
        {
            stream.Write(bytes);
            if (flush)
            {
                stream.Flush();
            }
            return Ok();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away: the guest sees the stream fail and may stop early.
            stream.Closed = true;
            return Err(Variant("last-operation-failed", Resource(c, ResourceTypes.IoError, r.Table.Add(new IoError(e.Message)))));
        }
    }

    // ---- plumbing -------------------------------------------------------------------------------------------

    private static void Instance(IntPtr parent, string name, Action<IntPtr> define)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        IntPtr child;
        fixed (byte* p = bytes)
        {
            Check(wasmtime_component_linker_instance_add_instance(parent, p, (nuint)bytes.Length, out child), $"defining {name}");
        }
        try
        {
            define(child);
        }
        finally
        {
            wasmtime_component_linker_instance_delete(child);
        }
    }

    internal static void Res(IntPtr instance, string name, uint type)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        var ty = wasmtime_component_resource_type_new_host(type);
        try
        {
            fixed (byte* p = bytes)
            {
                Check(wasmtime_component_linker_instance_add_resource(instance, p, (nuint)bytes.Length, ty,
                    &Destroy, (IntPtr)type, IntPtr.Zero), $"defining resource {name}");
            }
        }
        finally
        {
            wasmtime_component_resource_type_delete(ty);
        }
    }

    internal static void Func(IntPtr instance, string name, HostFunction function)
    {
        int index;
        lock (FunctionsLock)
        {
            index = Functions.Count;
            Functions.Add(function);
            FunctionNames.Add(name);
        }
        var bytes = Encoding.UTF8.GetBytes(name);
        fixed (byte* p = bytes)
        {
            Check(wasmtime_component_linker_instance_add_func(instance, p, (nuint)bytes.Length, &Call, index, IntPtr.Zero),
                $"defining {name}");
        }
    }

    private static ProxyRequest RequestOf(IntPtr context) =>
        (ProxyRequest)GCHandle.FromIntPtr(wasmtime_context_get_data(context)).Target!;

    [UnmanagedCallersOnly]
    private static IntPtr Call(IntPtr data, IntPtr context, IntPtr type, Val* args, nuint nargs, Val* results, nuint nresults)
    {
        try
        {
            HostFunction function;
            lock (FunctionsLock)
            {
                function = Functions[(int)data];
            }
            if (Trace)
            {
                Console.Error.WriteLine($"wasi:http host call {FunctionNames[(int)data]}");
            }
            function(RequestOf(context), context, new ReadOnlySpan<Val>(args, (int)nargs), new Span<Val>(results, (int)nresults));
            return IntPtr.Zero;
        }
        catch (Exception e)
        {
            // The guest traps with the host's reason.
            if (Trace)
            {
                Console.Error.WriteLine($"wasi:http host call failed: {e}");
            }
            return wasmtime_error_new($"wasi:http host: {e.Message}");
        }
    }

    /// <summary>Each epoch tick: a killed container's guest traps, and so does one whose request was aborted (the
    /// client went away, or the drain deadline passed); any other is charged its CPU time and runs on to the next
    /// tick, after a pause if its container is over its CPU quota.</summary>
    [UnmanagedCallersOnly]
    private static IntPtr OnEpochDeadline(IntPtr context, IntPtr data, ulong* delta, byte* kind)
    {
        var request = (ProxyRequest)GCHandle.FromIntPtr(data).Target!;
        // Over the container's CPU quota the guest pauses here; a kill or an abort, before or during the pause, ends
        // it at once and traps the guest below.
        request.ChargeCpu(mayPause: true);
        if (request.Guest.Killed)
        {
            return wasmtime_error_new("the container was killed");
        }
        if (request.Exchange.Aborted.IsCancellationRequested)
        {
            return wasmtime_error_new("the request was aborted (the client went away or the server stopped)");
        }
        *delta = 1;
        return IntPtr.Zero;
    }

    [UnmanagedCallersOnly]
    private static IntPtr Destroy(IntPtr data, IntPtr context, uint rep)
    {
        try
        {
            RequestOf(context).Table.Drop(rep);
            return IntPtr.Zero;
        }
        catch (Exception e)
        {
            return wasmtime_error_new($"wasi:http host: dropping a resource: {e.Message}");
        }
    }
}

/// <summary>The guest trapped or failed while handling a request.</summary>
internal sealed class GuestException(string message) : Exception(message);
