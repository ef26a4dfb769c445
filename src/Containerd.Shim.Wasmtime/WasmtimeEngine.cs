using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// Runs WASI preview 1 commands on Wasmtime. One object lives in one instance process: <see cref="CanHandle"/>
/// loads the module at task Create and <see cref="RunWasi"/> runs that same module at Start. Loading takes a
/// compiled artifact from the module's cache (the content store for a wasm layer, the cache folder for a rootfs
/// module) when one fits this engine, and compiles, then stores the artifact, otherwise.
/// </summary>
public sealed class WasmtimeEngine : IEngine, IPrecompiler, IEngineWarmup, IDisposable
{
    private CompilationCache? _cache;
    private Engine? _engine;
    private Module? _module;
    private Task<Engine>? _warming;

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
        try
        {
            _module = Load(_engine, entrypoint);
            ShimTrace.Mark("instance: module loaded");
        }
        catch (WasmtimeException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                $"invalid {(entrypoint.Format == ModuleFormat.Text ? "wat" : "wasm")} module: {FirstLine(e.Message)}", e);
        }
        var export = _module.Exports.FirstOrDefault(e => e.Name == entrypoint.Function);
        if (export is not FunctionExport)
        {
            throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                $"module does not export a function named \"{entrypoint.Function}\"");
        }
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_engine is null || _module is null)
        {
            CanHandle(ctx);
        }
        using var linker = new Linker(_engine!);
        linker.DefineWasi();
        using var store = new Store(_engine!);
        store.SetWasiConfiguration(WasiSetup.For(ctx));
        if (ctx.GuestMemoryBudget() is { } budget)
        {
            // Past the container's memory limit memory.grow returns -1 (a guest's malloc fails cleanly) instead of
            // the kernel OOM-killing the whole instance process.
            store.SetLimits(memorySize: budget);
        }

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
                Console.Error.WriteLine($"{Name}: {entrypoint.Name}: cannot instantiate under the container's memory limit of " +
                    $"{limit} bytes (linear memory may use {ctx.GuestMemoryBudget()} of them): {FirstLine(e.Message)}");
                return ExitCodes.Trap;
            }
            var run = instance.GetAction(entrypoint.Function)
                ?? throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"\"{entrypoint.Function}\" is not a function without parameters and results");
            run();
            return 0;
        }
        catch (WasmtimeException e) when (e.ExitCode is { } code)
        {
            // proc_exit surfaces as an error carrying the code: the program's chosen exit, not a failure.
            return code;
        }
        catch (TrapException e)
        {
            Console.Error.WriteLine($"{Name}: {entrypoint.Name}: {e.Message}");
            return ExitCodes.Trap;
        }
    }

    /// <summary>Releases the compiled module and the engine.</summary>
    public void Dispose()
    {
        _module?.Dispose();
        if (_engine is null && _warming is { IsCompletedSuccessfully: true } warmed)
        {
            // Warmed up for a container that failed before CanHandle.
            warmed.Result.Dispose();
        }
        _engine?.Dispose();
    }

    /// <inheritdoc/>
    public byte[] Precompile(ReadOnlySpan<byte> module, ModuleFormat format)
    {
        _engine ??= _warming is { } warming ? warming.GetAwaiter().GetResult() : Settings.CreateEngine();
        var digest = DirectoryModuleCache.DigestOf(module);
        using var compiled = Compile(_engine, digest, module, format, digest, "precompile");
        return compiled.Serialize();
    }

    private Module Load(Engine engine, Entrypoint entrypoint)
    {
        ReadOnlyMemory<byte> bytes = entrypoint.Bytes is { } b
            ? b
            : File.ReadAllBytes(entrypoint.Path ?? throw new EntrypointException(EntrypointError.Missing, entrypoint.Name, "no module file or bytes"));
        var digest = DirectoryModuleCache.DigestOf(bytes.Span);
        var cache = entrypoint.Cache ?? Settings.ForRootfsModule(digest);
        var reason = "cache off";
        if (cache is not null)
        {
            if (TryLoadCached(engine, entrypoint, cache, out var problem) is { } cached)
            {
                return cached;
            }
            reason = problem ?? "not cached";
        }

        var module = Compile(engine, entrypoint.Name, bytes.Span, entrypoint.Format, digest, reason);
        if (cache is not null)
        {
            try
            {
                cache.Store(Name, CompatibilityHash, module.Serialize());
            }
            catch (Exception e)
            {
                // Any failure to keep the artifact (full disk, containerd gone) costs the next start a compile only.
                ShimLog.Debug($"{Name}: keeping the compiled {entrypoint.Name} in {cache.Description} failed: {e.Message}");
            }
        }
        return module;
    }

    private Module? TryLoadCached(Engine engine, Entrypoint entrypoint, ICompiledModuleCache cache, out string? problem)
    {
        CompiledArtifact? artifact;
        try
        {
            artifact = cache.Find(Name, CompatibilityHash, out problem);
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
        try
        {
            // A file is memory-mapped, so containers of one module share the code pages.
            return artifact.Path is { } path
                ? Module.DeserializeFile(engine, entrypoint.Name, path)
                : Module.Deserialize(engine, entrypoint.Name, artifact.Bytes.Span);
        }
        catch (Exception e) when (e is WasmtimeException or IOException)
        {
            // Wasmtime checks the artifact's engine version, settings and CPU features itself.
            problem = $"wasmtime refused {artifact.Digest}: {FirstLine(e.Message)}";
            try
            {
                cache.Discard(Name, CompatibilityHash, artifact);
            }
            catch (Exception d)
            {
                ShimLog.Debug($"{Name}: removing {artifact.Digest} from {cache.Description} failed: {d.Message}");
            }
            return null;
        }
    }

    // The one place a module is really compiled; the compile log counts exactly these.
    private Module Compile(Engine engine, string name, ReadOnlySpan<byte> bytes, ModuleFormat format, string digest, string reason)
    {
        Settings.RecordCompilation(digest, name, reason);
        return format == ModuleFormat.Text
            ? Module.FromText(engine, name, System.Text.Encoding.UTF8.GetString(bytes))
            : Module.FromBytes(engine, name, bytes);
    }

    private static string FirstLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // Wasmtime puts the cause last ("Caused by: ..."), which is the part a user can act on.
        return string.Join(": ", lines.Where(l => l != "Caused by:" && !l.StartsWith("0:", StringComparison.Ordinal)));
    }
}
