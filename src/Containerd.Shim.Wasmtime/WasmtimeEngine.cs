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
/// wasi:http host's engine, whose artifacts are keyed by <see cref="CompilationCache.HttpCompatibilityHash"/>.
/// </summary>
public sealed class WasmtimeEngine : IEngine, IPrecompiler, IEngineWarmup, IDisposable
{
    private CompilationCache? _cache;
    private Engine? _engine;
    private Module? _module;
    private Component? _component;
    private string? _runExport;
    private Task<Engine>? _warming;
    private Http.ProxyHost? _httpProxy;

    /// <inheritdoc/>
    public string CompatibilityHash => Settings.CompatibilityHash;

    private CompilationCache Settings => _cache ??= CompilationCache.FromEnvironment();

    /// <inheritdoc/>
    public string Name => "wasmtime";

    /// <summary>Reads the settings and creates the engine (which loads libwasmtime and sets up Cranelift) on a
    /// worker thread; <see cref="CanHandle"/> takes the result, or the settings' error.</summary>
    public void BeginWarmup() => _warming ??= Task.Run(() => Settings.CreateEngine());

    /// <inheritdoc/>
    public void CanHandle(RuntimeContext ctx)
    {
        var entrypoint = ctx.Entrypoint;
        // Waiting on the warm-up also makes the settings it read (_cache) visible to this thread.
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
                _ = Http.HttpServerLimits.FromEnvironment();
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
            return Http.HttpProxyRunner.Run(proxy, ctx.EnvironmentVariables, ctx.Entrypoint.Name);
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

    /// <summary>Compiles <paramref name="module"/> and returns the engine's native artifact. A wasi:http proxy
    /// component is compiled on the wasi:http host's engine (what <see cref="RunWasi"/> would load), whose artifacts
    /// are keyed by <see cref="CompilationCache.HttpCompatibilityHash"/> rather than <see cref="CompatibilityHash"/>.</summary>
    public byte[] Precompile(ReadOnlySpan<byte> module, ModuleFormat format)
    {
        _engine ??= _warming is { } warming ? warming.GetAwaiter().GetResult() : Settings.CreateEngine();
        var digest = DirectoryModuleCache.DigestOf(module);
        using var compiled = Compile(_engine, digest, module, format, digest, "precompile", IsProxy(module, format));
        return compiled.Serialize();
    }

    private static bool IsProxy(ReadOnlySpan<byte> module, ModuleFormat format)
    {
        if (format != ModuleFormat.Component)
        {
            return false;
        }
        try
        {
            return ComponentWorld.Classify("component", WasmBinary.ComponentExports(module)).Kind == ComponentKind.HttpProxy;
        }
        catch (Exception e) when (e is InvalidDataException or EntrypointException)
        {
            // Compiling it says what is wrong with it.
            return false;
        }
    }

    private Compiled Load(Engine engine, Entrypoint entrypoint, ReadOnlyMemory<byte> bytes, bool proxy)
    {
        var digest = DirectoryModuleCache.DigestOf(bytes.Span);
        string? refusal = null;
        var cache = entrypoint.Cache ?? Settings.ForRootfsModule(digest, out refusal);
        var hash = proxy ? Settings.HttpCompatibilityHash : CompatibilityHash;
        var reason = refusal is null ? "cache off" : $"cache refused: {refusal}";
        if (cache is not null)
        {
            if (TryLoadCached(engine, entrypoint, cache, hash, proxy, out var problem) is { } cached)
            {
                return cached;
            }
            reason = problem ?? "not cached";
        }

        Compiled compiled;
        try
        {
            compiled = Compile(engine, entrypoint.Name, bytes.Span, entrypoint.Format, digest, reason, proxy);
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
        if (cache is not null)
        {
            try
            {
                cache.Store(Name, hash, compiled.Serialize());
            }
            catch (Exception e)
            {
                // Any failure to keep the artifact (full disk, containerd gone) costs the next start a compile only.
                ShimLog.Debug($"{Name}: keeping the compiled {entrypoint.Name} in {cache.Description} failed: {e.Message}");
            }
        }
        return compiled;
    }

    private Compiled? TryLoadCached(Engine engine, Entrypoint entrypoint, ICompiledModuleCache cache, string hash, bool proxy, out string? problem)
    {
        CompiledArtifact? artifact;
        try
        {
            artifact = cache.Find(Name, hash, out problem);
        }
        catch (Exception e)
        {
            // An unreachable or unreadable cache is a miss: the container starts with a compile.
            problem = $"cache unusable: {e.Message}";
            return null;
        }
        ShimTrace.Mark($"instance: cache lookup done ({(artifact is null ? "miss" : "hit")})");
        if (artifact is null)
        {
            return null;
        }
        // The engine maps the file (by its /proc/self/fd name) while the handle is open; the mapping outlives it.
        using var _ = artifact;
        try
        {
            // A file is memory-mapped, so containers of one module share the code pages.
            if (proxy)
            {
                return new Compiled(null, null, artifact.Path is { } proxyFile
                    ? Http.ProxyHost.DeserializeFile(proxyFile, Settings.HttpEngine)
                    : Http.ProxyHost.Deserialize(artifact.Bytes.Span, Settings.HttpEngine));
            }
            if (entrypoint.Format == ModuleFormat.Component)
            {
                return new Compiled(null, artifact.Path is { } file
                    ? Component.DeserializeFile(engine, file)
                    : Component.Deserialize(engine, artifact.Bytes.Span), null);
            }
            return new Compiled(artifact.Path is { } path
                ? Module.DeserializeFile(engine, entrypoint.Name, path)
                : Module.Deserialize(engine, entrypoint.Name, artifact.Bytes.Span), null, null);
        }
        catch (Exception e) when (e is WasmtimeException or IOException || (proxy && e is InvalidOperationException))
        {
            // Wasmtime checks the artifact's engine version, settings and CPU features itself (the wasi:http host
            // reports its refusals as InvalidOperationException).
            problem = $"wasmtime refused {artifact.Digest}: {GuestExit.OneLine(e.Message)}";
            try
            {
                cache.Discard(Name, hash, artifact);
            }
            catch (Exception d)
            {
                ShimLog.Debug($"{Name}: removing {artifact.Digest} from {cache.Description} failed: {d.Message}");
            }
            return null;
        }
    }

    // The one place a module is really compiled; the compile log counts exactly these.
    private Compiled Compile(Engine engine, string name, ReadOnlySpan<byte> bytes, ModuleFormat format, string digest, string reason, bool proxy)
    {
        Settings.RecordCompilation(digest, proxy ? Settings.HttpCompatibilityHash : CompatibilityHash, name, reason);
        if (proxy)
        {
            return new Compiled(null, null, Http.ProxyHost.Compile(bytes, Settings.HttpEngine));
        }
        return format switch
        {
            ModuleFormat.Component => new Compiled(null, Component.FromBytes(engine, bytes), null),
            ModuleFormat.Text => new Compiled(Module.FromText(engine, name, System.Text.Encoding.UTF8.GetString(bytes)), null, null),
            _ => new Compiled(Module.FromBytes(engine, name, bytes), null, null),
        };
    }

    // A compiled core module, component or proxy component: the cache paths are the same for all three.
    private sealed record Compiled(Module? Module, Component? Component, Http.ProxyHost? Proxy) : IDisposable
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
