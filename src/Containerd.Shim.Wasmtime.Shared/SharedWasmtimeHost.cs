using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Containerd.Shim.Wasm;
using Containerd.Shim.Wasm.Shared;
using Containerd.Shim.Wasmtime.Http;
using Containerd.Shimkit;
using Wasmtime;
using Wasmtime.Components;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The in-process instance factory of the shared-mode daemon: one Wasmtime <see cref="Engine"/> for every container
/// of every sandbox, compiled modules and components kept in memory by digest (a second container of the same program
/// compiles nothing), and each container an <see cref="InProcessInstance"/> on a thread of its own.
/// </summary>
/// <remarks>
/// The engine has epoch interruption on (kills reach a guest spinning in wasm code) and copy-on-write memory
/// initialisation; with <see cref="PoolVariable"/> set to a slot count it also uses the pooling allocator, which
/// reserves address space for that many instances up front and caps each one's memory at <see cref="PoolMemoryVariable"/>.
/// </remarks>
public sealed class SharedWasmtimeHost : IInstanceFactory, ISharedHost, IDisposable
{
    /// <summary>Pooling allocator slots (instances, memories, tables); unset or 0 keeps the on-demand allocator.</summary>
    public const string PoolVariable = "CONTAINERD_WASMTIMED_POOL";

    /// <summary>The largest linear memory a pool slot holds, in MiB (default 256).</summary>
    public const string PoolMemoryVariable = "CONTAINERD_WASMTIMED_POOL_MEMORY_MIB";

    private readonly ProgramCache _programs;
    private readonly Lazy<ComponentLinker> _componentLinker;
    private readonly Lazy<SharedArtifactCache> _artifacts;
    private readonly Timer _ticker;
    private readonly Lock _linkerGate = new();
    private readonly CompileGate _compileGate;
    private long _compilations;
    private int _running;

    /// <summary>Creates the engine.</summary>
    public SharedWasmtimeHost()
    {
        _compileGate = CompileGate.FromEnvironment();
        GuestThreads = DaemonLimit.GuestThreads();
        Connections = DaemonLimit.Connections();
        _programs = ProgramCache.FromEnvironment();
        Engine = CreateEngine(out var description);
        // Not part of the description: that names the artifacts' compatibility hash, which the worker count (and
        // serial compilation) does not change.
        ShimLog.Info($"compile workers: {_compileGate.Workers} (serial compilation); guest threads: at most {GuestThreads.Max}; wasi:http connections: at most {Connections.Max}; idle programs kept in memory: {_programs.MaxIdle}");
        Description = description;
        // Read at the first Create, so a setting the daemon cannot use fails that Create naming the variable.
        _artifacts = new Lazy<SharedArtifactCache>(() => new SharedArtifactCache(WasmtimeSettings.FromEnvironment(), description));
        Linker = new Linker(Engine) { AllowShadowing = true };
        Linker.DefineWasi();
        // Untyped: the typed overloads build their callbacks with reflection NativeAOT cannot compile ahead.
        Linker.DefineFunction("wasi_snapshot_preview1", "poll_oneoff",
            (Caller caller, ReadOnlySpan<ValueBox> args, Span<ValueBox> results) =>
                results[0] = WasiPoll.PollOneoff(caller, args[0].AsInt32(), args[1].AsInt32(), args[2].AsInt32(), args[3].AsInt32()),
            [ValueKind.Int32, ValueKind.Int32, ValueKind.Int32, ValueKind.Int32], [ValueKind.Int32]);
        // A steady epoch tick bounds how long a kill can go unnoticed by a guest that entered wasm code just after
        // the kill's own tick; every tick costs each running guest one deadline callback.
        _ticker = new Timer(_ => Engine.IncrementEpoch(), null, TickInterval, TickInterval);
        // Made on the first component: a daemon that only ever runs modules never builds the WASI 0.2 definitions.
        _componentLinker = new Lazy<ComponentLinker>(() =>
        {
            var linker = new ComponentLinker(Engine);
            linker.AddWasiPreview2();
            return linker;
        });
    }

    /// <summary>How often the epoch advances.</summary>
    public static TimeSpan TickInterval { get; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The shared engine.</summary>
    public Engine Engine { get; }

    /// <summary>What the engine was configured with, for the daemon's log.</summary>
    public string Description { get; }

    internal Linker Linker { get; }

    /// <summary>The cap on guest threads across every container of the daemon.</summary>
    internal DaemonLimit GuestThreads { get; }

    /// <summary>The cap on open wasi:http connections across every container of the daemon.</summary>
    internal DaemonLimit Connections { get; }

    /// <inheritdoc/>
    public long Compilations => Interlocked.Read(ref _compilations);

    /// <inheritdoc/>
    public int CachedModules => _programs.Count;

    /// <inheritdoc/>
    public int RunningInstances => Volatile.Read(ref _running);

    /// <inheritdoc/>
    public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(config);
        // Before anything is opened or compiled: what of the spec this process can honour, and a refusal naming the
        // field for what it cannot (docs/security.md, shared mode).
        var binds = SharedSpecPolicy.Apply(config.Spec, SharedSpecPolicy.SeccompAcceptedByEnvironment());
        var image = new ImageModuleSource(config.Id, config.Namespace, config.ContainerdAddress);
        var ctx = RuntimeContext.FromSharedSpec(config.Id, config.Rootfs, config.Spec, image.Resolve, binds);
        try
        {
            var instance = Create(config, ctx, ct);
            // The program is compiled or found, and a running container needs no copy of its module.
            ctx.Entrypoint.ReleaseBytes();
            if (instance is InProcessProxyInstance)
            {
                // A proxy component gets no directories: nothing holds the preopens.
                ctx.Dispose();
            }
            return Task.FromResult(instance);
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
    }

    private IInstance Create(InstanceConfig config, RuntimeContext ctx, CancellationToken ct)
    {
        var entrypoint = ctx.Entrypoint;
        // Found by digest: a program in memory already is neither copied nor compiled again, and the container keeps
        // no copy of its module once Create is done (CreateAsync releases the resolver's bytes).
        var digest = DigestOf(entrypoint);
        var key = $"{entrypoint.Format}:{digest}";
        var lease = _programs.Acquire(key, () => LoadProgram(entrypoint, digest, ct));
        return Leased(lease, () =>
        {
            var program = lease.Value;
            if (program.Proxy is { } proxy)
            {
                SharedSpecPolicy.CheckProxyNetwork(config.Spec);
                // The instance holds the lease until it ends; the proxy host itself, until its last request has.
                return InProcessProxyInstance.Create(this, proxy, lease, config, ctx, program.Shape);
            }
            if (program.Module is { } module && module.Exports.FirstOrDefault(e => e.Name == entrypoint.Function) is not FunctionExport)
            {
                throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"module does not export a function named \"{UntrustedText.Excerpt(entrypoint.Function)}\"");
            }
            return InProcessInstance.Create(this, config, ctx, new CompiledProgram(program.Module, program.Component, program.RunExport, program.Shape, lease));
        });
    }

    // A Create that fails gives its program's lease back; one that succeeds hands it to the instance.
    private static IInstance Leased(IDisposable lease, Func<IInstance> create)
    {
        try
        {
            return create();
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }

    // Reads, checks and compiles (or loads) the program under digest; once per digest while it stays in memory.
    private LoadedProgram LoadProgram(Entrypoint entrypoint, string digest, CancellationToken ct)
    {
        var bytes = ReadBytes(entrypoint);
        // Bytes read again from a file may differ from those hashed (a tenant's writer racing the daemon): a program
        // kept under another digest than its own would be handed to every container whose module has that digest.
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != digest)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, "the module changed while the daemon read it");
        }
        if (entrypoint.Format == ModuleFormat.Component)
        {
            IReadOnlyList<string> exports;
            try
            {
                exports = WasmBinary.ComponentExports(bytes);
            }
            catch (InvalidDataException e)
            {
                throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, $"invalid component: {e.Message}", e);
            }
            var (kind, exportName) = ComponentWorld.Classify(entrypoint.Name, exports);
            var shape = ShapeOf(entrypoint, bytes);
            return kind == ComponentKind.HttpProxy
                ? new LoadedProgram(null, null, LoadProxy(entrypoint, bytes, ct), null, shape)
                : new LoadedProgram(null, LoadComponent(entrypoint, bytes, ct), null, exportName, shape);
        }
        var module = LoadModule(entrypoint, bytes, ct);
        try
        {
            // Text is assembled once more for its shape (read from the binary), here and not per Create.
            return new LoadedProgram(module, null, null, null, ShapeOf(entrypoint, entrypoint.Format == ModuleFormat.Text
                ? Module.ConvertText(System.Text.Encoding.UTF8.GetString(bytes))
                : bytes));
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Stops the epoch ticker and releases the modules and the engine.</summary>
    public void Dispose()
    {
        _ticker.Dispose();
        Linker.Dispose();
        if (_componentLinker.IsValueCreated)
        {
            _componentLinker.Value.Dispose();
        }
        _programs.DisposeAll();
        Engine.Dispose();
    }

    internal void InstanceStarted() => Interlocked.Increment(ref _running);

    internal void InstanceEnded() => Interlocked.Decrement(ref _running);

    internal Instance Instantiate(Store store, Module module)
    {
        // One linker for every instance: its definitions do not depend on the store (poll_oneoff finds its instance
        // through the store's data), and instantiation is microseconds.
        lock (_linkerGate)
        {
            return Linker.Instantiate(store, module);
        }
    }

    internal ComponentInstance Instantiate(Store store, Component component)
    {
        lock (_linkerGate)
        {
            return _componentLinker.Value.Instantiate(store, component);
        }
    }

    // The module's SHA-256: the key of its program in memory and of its artifact.
    private static string DigestOf(Entrypoint entrypoint) =>
        Convert.ToHexStringLower(SHA256.HashData(entrypoint.Bytes is { } inMemory ? inMemory.Span : ReadBytes(entrypoint)));

    private static byte[] ReadBytes(Entrypoint entrypoint)
    {
        if (entrypoint.Bytes is { } inMemory)
        {
            return inMemory.ToArray();
        }
        var path = entrypoint.Path ?? throw new EntrypointException(EntrypointError.Missing, entrypoint.Name, "no module file or bytes");
        var limit = ModuleSizeLimit.Bytes;
        try
        {
            // In the daemon every tenant's module shares one process's memory.
            return BoundedRead.File(path, limit);
        }
        catch (ReadLimitExceededException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, ModuleSizeLimit.TooLarge(null, limit), e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EntrypointException(EntrypointError.NotFound, entrypoint.Name, $"cannot read the module: {e.Message}", e);
        }
    }

    private Component LoadComponent(Entrypoint entrypoint, byte[] bytes, CancellationToken ct)
    {
        try
        {
            return _artifacts.Value.GetOrCompile(entrypoint.Name, bytes, ModuleFormat.Component, () => _compileGate.Run(entrypoint.Name, ct, () =>
                {
                    Interlocked.Increment(ref _compilations);
                    var component = Component.FromBytes(Engine, bytes);
                    ShimLog.Debug($"compiled component {entrypoint.Name} ({bytes.Length} bytes)");
                    return component;
                }),
                artifact => artifact.Path is { } file ? Component.DeserializeFile(Engine, file) : Component.Deserialize(Engine, artifact.Bytes.Span),
                component => component.Serialize());
        }
        catch (WasmtimeException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, $"invalid component: {GuestExit.OneLine(e.Message)}", e);
        }
    }

    // A proxy component is compiled through the component C API (Http/ProxyHost: the .NET binding cannot hand a
    // host request to a guest), on this same engine; the compiled component and its linker serve every container
    // of that component.
    private ProxyHost LoadProxy(Entrypoint entrypoint, byte[] bytes, CancellationToken ct)
    {
        try
        {
            return _artifacts.Value.GetOrCompile(entrypoint.Name, bytes, ModuleFormat.Component, () => _compileGate.Run(entrypoint.Name, ct, () =>
                {
                    Interlocked.Increment(ref _compilations);
                    var proxy = ProxyHost.LoadOn(EngineHandle(Engine), bytes, epochInterruption: true);
                    ShimLog.Debug($"compiled wasi:http component {entrypoint.Name} ({bytes.Length} bytes)");
                    return proxy;
                }),
                // The folder cache always hands over a file (a descriptor it checked).
                artifact => ProxyHost.DeserializeFileOn(EngineHandle(Engine), artifact.Path!, epochInterruption: true),
                proxy => proxy.Serialize());
        }
        catch (InvalidOperationException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, $"invalid component: {GuestExit.OneLine(e.Message)}", e);
        }
    }

    // The engine compiled the bytes already, so a shape that cannot be read is a reader's gap, not the tenant's.
    private static StoreShape ShapeOf(Entrypoint entrypoint, ReadOnlySpan<byte> binary)
    {
        try
        {
            return StoreShape.Of(binary);
        }
        catch (InvalidDataException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                $"cannot count the memories and tables the store needs, so its memory limit could not be enforced: {e.Message}", e);
        }
    }

    /// <summary>The native engine behind the binding's <see cref="Engine"/>, which keeps it private; valid while the
    /// engine is.</summary>
    private static IntPtr EngineHandle(Engine engine) => ((SafeHandle)NativeHandleOf(engine)).DangerousGetHandle();

    // Wasmtime.Engine's internal NativeHandle property (Wasmtime 50, a SafeHandle of the internal type
    // Engine.Handle). An UnsafeAccessor is bound at compile time by NativeAOT, no reflection (a field accessor with
    // UnsafeAccessorType is refused at run time: "Invalid usage"); a renamed member fails the first proxy component's
    // Create with MissingMethodException, which the shared-mode HTTP tests catch.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_NativeHandle")]
    [return: UnsafeAccessorType("Wasmtime.Engine+Handle, Wasmtime.Dotnet")]
    private static extern object NativeHandleOf(Engine engine);

    private Module LoadModule(Entrypoint entrypoint, byte[] bytes, CancellationToken ct)
    {
        var text = entrypoint.Format == ModuleFormat.Text;
        try
        {
            // Text is kept in memory only: the folder is for binaries, as in normal mode.
            return text
                ? Compile(entrypoint, bytes, ct)
                : _artifacts.Value.GetOrCompile(entrypoint.Name, bytes, ModuleFormat.Binary, () => Compile(entrypoint, bytes, ct),
                    artifact => artifact.Path is { } file
                        ? Module.DeserializeFile(Engine, entrypoint.Name, file)
                        : Module.Deserialize(Engine, entrypoint.Name, artifact.Bytes.Span),
                    module => module.Serialize());
        }
        catch (WasmtimeException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                $"invalid {(text ? "wat" : "wasm")} module: {GuestExit.OneLine(e.Message)}", e);
        }
    }

    private Module Compile(Entrypoint entrypoint, byte[] bytes, CancellationToken ct) => _compileGate.Run(entrypoint.Name, ct, () =>
    {
        Interlocked.Increment(ref _compilations);
        var module = entrypoint.Format == ModuleFormat.Text
            ? Module.FromText(Engine, entrypoint.Name, System.Text.Encoding.UTF8.GetString(bytes))
            : Module.FromBytes(Engine, entrypoint.Name, bytes);
        ShimLog.Debug($"compiled {entrypoint.Name} ({bytes.Length} bytes)");
        return module;
    });

    private static Engine CreateEngine(out string description)
    {
        var slots = Environment.GetEnvironmentVariable(PoolVariable) is { Length: > 0 } s && uint.TryParse(s, out var n) ? n : 0u;
        var memoryMib = Environment.GetEnvironmentVariable(PoolMemoryVariable) is { Length: > 0 } m && ulong.TryParse(m, out var mib) && mib > 0 ? mib : 256ul;
        if (slots > 0)
        {
            try
            {
                using var pooled = BaseConfig();
                using var pool = new PoolingAllocationConfig()
                    .WithMaxCoreInstances(slots)
                    .WithMaxMemories(slots)
                    .WithMaxTables(slots)
                    .WithMaxMemorySize((nuint)(memoryMib << 20));
                pooled.WithPoolingAllocationStrategy(pool);
                description = $"epoch interruption, copy-on-write memory images, pooling allocator ({slots} slots of {memoryMib} MiB)";
                return new Engine(pooled);
            }
            catch (WasmtimeException e)
            {
                ShimLog.Warn($"pooling allocator with {slots} slots unavailable, allocating on demand: {e.Message}");
            }
        }
        using var config = BaseConfig();
        description = "epoch interruption, copy-on-write memory images, on-demand allocator";
        return new Engine(config);
    }

    // Serial compilation: one compile uses one core, so the compile gate's slots bound the daemon's compile CPU.
    private static Config BaseConfig() => new Config()
        .WithParallelCompilation(false)
        .WithEpochInterruption(true)
        .WithMemoryInitCopyOnWrite(true);
}

/// <summary>What a container of the daemon runs: a core module, or a command component and its wasi:cli/run export,
/// and the lease on it the container gives back when its store is gone.</summary>
internal sealed record CompiledProgram(Module? Module, Component? Component, string? RunExport, StoreShape Shape, IDisposable Lease);

/// <summary>
/// What the daemon keeps in memory per digest: the compiled core module, command component (with its wasi:cli/run
/// export) or proxy host, and the shape of its store, so that nothing of it is redone per Create.
/// </summary>
internal sealed record LoadedProgram(Module? Module, Component? Component, ProxyHost? Proxy, string? RunExport, StoreShape Shape) : IDisposable
{
    /// <inheritdoc/>
    public void Dispose()
    {
        Module?.Dispose();
        Component?.Dispose();
        Proxy?.Dispose();
    }
}
