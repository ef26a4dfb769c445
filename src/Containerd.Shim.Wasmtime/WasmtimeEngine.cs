using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Wasmtime;
using Wasmtime.Components;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// Runs WASI preview 1 commands, WASI 0.2 <c>wasi:cli/command</c> components and <c>wasi:http/proxy</c> components
/// (served by the host in Http/) on Wasmtime. One object lives in one instance process: <see cref="CanHandle"/> loads
/// the module or component at task Create and <see cref="RunWasi"/> runs it at Start. Loading takes a compiled
/// artifact from the program's cache (the content store for a wasm layer, the cache folder for a rootfs file) when
/// one fits this engine, and compiles, then stores the artifact, otherwise. Proxy components are compiled on the
/// wasi:http host's engine, whose artifacts are kept under <see cref="WasmtimeSettings.HttpKey"/>.
/// </summary>
public class WasmtimeEngine : IEngine, IEngineWarmup, IDisposable
{
    private readonly IProxyServer? _proxyServer;
    private WasmtimeSettings? _settings;
    private Engine? _engine;
    private Module? _module;
    private Component? _component;
    private string? _runExport;
    private Task<Engine>? _warming;
    private IProxyProgram? _httpProxy;

    /// <summary>An engine for modules and command components; it refuses <c>wasi:http/proxy</c> components, which
    /// need <c>WasmtimeHttpEngine</c> (Containerd.Shim.Wasmtime.Http).</summary>
    public WasmtimeEngine()
    {
    }

    /// <summary>An engine whose proxy components <paramref name="proxyServer"/> serves.</summary>
    internal WasmtimeEngine(IProxyServer proxyServer) => _proxyServer = proxyServer;

    private WasmtimeSettings Settings => _settings ??= WasmtimeSettings.FromEnvironment();

    /// <inheritdoc/>
    public string Name => "wasmtime";

    /// <summary>Reads the settings and creates the engine (which loads libwasmtime and sets up Cranelift) on a
    /// worker thread; <see cref="CanHandle"/> takes the result, or the settings' error.</summary>
    public void BeginWarmup() => _warming ??= Task.Run(() => Settings.CreateEngine());

    /// <inheritdoc/>
    public void CanHandle(RuntimeContext ctx)
    {
        var entrypoint = ctx.Entrypoint;
        // Waiting on the warm-up also makes the settings it read (_settings) visible to this thread.
        _engine ??= _warming is { } warming ? warming.GetAwaiter().GetResult() : Settings.CreateEngine();
        ShimTrace.Mark("instance: engine created");
        var bytes = entrypoint.ReadModule();
        if (entrypoint.Format == ModuleFormat.Component)
        {
            // The exports decide before anything is compiled: a component that is neither a command nor a proxy
            // fails Create without the seconds a large component takes to compile.
            IReadOnlyList<string> exports;
            try
            {
                exports = WasmBinary.ComponentExports(bytes.Span);
            }
            catch (InvalidDataException e)
            {
                throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, $"invalid component: {e.Message}", e);
            }
            var (kind, export) = ComponentWorld.Classify(entrypoint.Name, exports);
            if (kind == ComponentKind.HttpProxy)
            {
                // Served by the wasi:http host (Http/), which links the proxy world's imports itself, on an engine of
                // its own; loading it here also links it, so a proxy the host cannot serve fails Create.
                // The server's limits come from the shim's environment: a value they cannot have fails Create.
                var server = _proxyServer ?? throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                    "a wasi:http/proxy component, and this shim was built without the wasi:http host (Containerd.Shim.Wasmtime.Http)");
                server.CheckSettings();
                _httpProxy = Load(_engine, entrypoint, bytes, proxy: true).Proxy;
                ShimTrace.Mark("instance: proxy component loaded");
                return;
            }
            _runExport = export;
            _component = Load(_engine, entrypoint, bytes, proxy: false).Component;
            CheckLinks(entrypoint, _component!);
            return;
        }
        _module = Load(_engine, entrypoint, bytes, proxy: false).Module;
        ShimTrace.Mark("instance: module loaded");
        var found = _module!.Exports.FirstOrDefault(e => e.Name == entrypoint.Function);
        if (found is not FunctionExport)
        {
            throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                $"module does not export a function named \"{UntrustedText.Excerpt(entrypoint.Function)}\"");
        }
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_engine is null || (_module is null && _component is null && _httpProxy is null))
        {
            CanHandle(ctx);
        }
        if (_httpProxy is { } proxy)
        {
            // The runner owns the host from here on.
            _httpProxy = null;
            return _proxyServer!.Serve(proxy, ctx.EnvironmentVariables, ctx.Entrypoint.Name);
        }
        if (_component is not null)
        {
            return RunCommandComponent(ctx);
        }
        using var linker = new Linker(_engine!);
        linker.DefineWasi();
        using var store = GuestStore(ctx);

        var entrypoint = ctx.Entrypoint;
        try
        {
            Instance instance;
            try
            {
                instance = linker.Instantiate(store, _module!);
            }
            catch (WasmtimeException e) when (e.ExitCode is null && ctx.MemoryLimit is { } limit)
            {
                // Most likely the module's initial memory does not fit the cap; say which limit it met.
                Console.Error.WriteLine($"{Name}: {UntrustedText.Excerpt(entrypoint.Name)}: cannot instantiate under the container's memory limit of " +
                    $"{limit} bytes (linear memory may use {ctx.GuestMemoryBudget()} of them): {GuestExit.OneLine(e.Message)}");
                return ExitCodes.Trap;
            }
            var run = instance.GetAction(entrypoint.Function)
                ?? throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"\"{UntrustedText.Excerpt(entrypoint.Function)}\" is not a function without parameters and results");
            run();
            return 0;
        }
        catch (Exception e) when (GuestExit.Of(e, entrypoint.Name, out var line) is { } code)
        {
            // proc_exit surfaces as an error carrying the program's chosen status; a trap is printed first.
            if (line is not null)
            {
                Console.Error.WriteLine(line);
            }
            return code;
        }
    }

    // A component whose imports the WASI 0.2 linker cannot satisfy fails Create, as a module without its export does:
    // a trial instantiation in a store with no WASI context of its own (component instantiation runs no guest code
    // but core start functions, which componentize-js and wit-component output does not have), thrown away.
    private void CheckLinks(Entrypoint entrypoint, Component component)
    {
        using var linker = new ComponentLinker(_engine!);
        linker.AddWasiPreview2();
        using var store = new Store(_engine!);
        store.SetWasiConfiguration(new WasiConfiguration());
        try
        {
            linker.Instantiate(store, component);
        }
        catch (WasmtimeException e) when (e.ExitCode is null)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                $"component cannot be linked with WASI 0.2: {GuestExit.OneLine(e.Message)}", e);
        }
    }

    // The store one run of a module or command component gets: the container's WASI context, and past its memory
    // limit memory.grow returns -1 (a guest's malloc fails cleanly) instead of the kernel OOM-killing the whole
    // instance process.
    private Store GuestStore(RuntimeContext ctx)
    {
        var store = new Store(_engine!);
        store.SetWasiConfiguration(WasiSetup.For(ctx));
        if (ctx.GuestMemoryBudget() is { } budget)
        {
            store.SetLimits(memorySize: budget);
        }
        return store;
    }

    // wasi:cli/run's run returns result<_, _>: ok is exit status 0, err is 1 (what wasmtime run and WASI 0.2 hosts
    // do); wasi:cli/exit ends the program early with the same statuses, or any with exit-with-code.
    private int RunCommandComponent(RuntimeContext ctx)
    {
        using var linker = new ComponentLinker(_engine!);
        linker.AddWasiPreview2();
        using var store = GuestStore(ctx);
        var entrypoint = ctx.Entrypoint;
        try
        {
            ComponentInstance instance;
            try
            {
                instance = linker.Instantiate(store, _component!);
            }
            catch (WasmtimeException e) when (e.ExitCode is null)
            {
                Console.Error.WriteLine($"{Name}: {UntrustedText.Excerpt(entrypoint.Name)}: cannot instantiate the component: {GuestExit.OneLine(e.Message)}");
                return ExitCodes.Trap;
            }
            var run = instance.GetFunction(_runExport!, "run")
                ?? throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"{UntrustedText.Excerpt(_runExport)} exports no function named \"run\"");
            var result = run.Call();
            return result is { Kind: ComponentValueKind.Result, IsOk: false } ? 1 : 0;
        }
        catch (Exception e) when (GuestExit.Of(e, entrypoint.Name, out var line) is { } code)
        {
            // proc_exit surfaces as an error carrying the program's chosen status; a trap is printed first.
            if (line is not null)
            {
                Console.Error.WriteLine(line);
            }
            return code;
        }
    }

    /// <summary>Releases the compiled program and the engine.</summary>
    public void Dispose()
    {
        _module?.Dispose();
        _component?.Dispose();
        _httpProxy?.Dispose();
        if (_engine is null && _warming is { IsCompletedSuccessfully: true } warmed)
        {
            // Warmed up for a container that failed before CanHandle.
            warmed.Result.Dispose();
        }
        _engine?.Dispose();
    }

    // Through the wasm layer's cache: a wasm layer's artifacts live in the content store, a rootfs module's in the
    // cache folder. Proxy components are compiled on the wasi:http host's engine, under a key of their own.
    private Compiled Load(Engine engine, Entrypoint entrypoint, ReadOnlyMemory<byte> bytes, bool proxy)
    {
        var source = new ProgramSource(entrypoint.Name, bytes, entrypoint.Format);
        try
        {
            return proxy
                ? new Compiled(null, null, Settings.Cache.GetOrCompile(ProxyCompiler, source, entrypoint.Cache))
                : Settings.Cache.GetOrCompile(ProgramCompiler(engine), source, entrypoint.Cache);
        }
        catch (Exception e) when (e is WasmtimeException || (proxy && e is InvalidOperationException))
        {
            var what = entrypoint.Format switch
            {
                ModuleFormat.Text => "wat module",
                ModuleFormat.Component => "component",
                _ => "wasm module",
            };
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name, $"invalid {what}: {GuestExit.OneLine(e.Message)}", e);
        }
    }

    // Core modules and command components on the command engine; a file is memory-mapped, so containers of one
    // module share the code pages.
    private WasmtimeProgramCompiler<Compiled> ProgramCompiler(Engine engine) => new(Settings.Key,
        source => source.Format switch
        {
            ModuleFormat.Component => new Compiled(null, Component.FromBytes(engine, source.Bytes.Span), null),
            ModuleFormat.Text => new Compiled(Module.FromText(engine, source.Name, System.Text.Encoding.UTF8.GetString(source.Bytes.Span)), null, null),
            _ => new Compiled(Module.FromBytes(engine, source.Name, source.Bytes.Span), null, null),
        },
        (source, artifact) => source.Format == ModuleFormat.Component
            ? new Compiled(null, artifact.Path is { } file
                ? Component.DeserializeFile(engine, file)
                : Component.Deserialize(engine, artifact.Bytes.Span), null)
            : new Compiled(artifact.Path is { } path
                ? Module.DeserializeFile(engine, source.Name, path)
                : Module.Deserialize(engine, source.Name, artifact.Bytes.Span), null, null),
        compiled => compiled.Serialize());

    /// <summary>How wasi:http proxy components are compiled, kept and loaded: on the wasi:http host's engine, under
    /// <see cref="WasmtimeSettings.HttpKey"/>.</summary>
    internal IProgramCompiler<IProxyProgram> ProxyCompiler => new WasmtimeProgramCompiler<IProxyProgram>(Settings.HttpKey,
        source => _proxyServer!.Compile(source.Bytes.Span, Settings.HttpEngine),
        (_, artifact) => _proxyServer!.Load(artifact, Settings.HttpEngine),
        proxy => proxy.Serialize());

    // A compiled core module, component or proxy component: the cache paths are the same for all three.
    private sealed record Compiled(Module? Module, Component? Component, IProxyProgram? Proxy) : IDisposable
    {
        public byte[] Serialize() => Module?.Serialize() ?? Component?.Serialize() ?? Proxy!.Serialize();

        public void Dispose()
        {
            Module?.Dispose();
            Component?.Dispose();
            Proxy?.Dispose();
        }
    }
}
