using System.Text;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Where an engine's compiled programs are kept between containers, and the one sequence every engine compiles
/// through: find an artifact (the content store for a wasm layer, the cache folder for a rootfs module), load it,
/// discard it if the engine refuses it, otherwise compile, log the compilation and store the artifact. A miss, a
/// refusal, an unusable cache or a failed store costs a compile, never a failed Create.
/// </summary>
/// <remarks>
/// The settings are read from the environment containerd passes to its shims, under the engine's name:
/// <c>CONTAINERD_SHIM_&lt;ENGINE&gt;_CACHE</c> (the folder, or <c>off</c>), <c>…_CACHE_SIZE</c> (its bound) and
/// <c>…_COMPILE_LOG</c> (one line per real compilation).
/// </remarks>
public sealed class CompileCache
{
    /// <summary>The default size bound of the cache folder: 512 MiB.</summary>
    public const long DefaultMaxBytes = 512L << 20;

    private int _refusalLogged;

    private CompileCache(string engine, string? directory, long maxBytes, string? compileLog)
    {
        Engine = engine;
        Directory = directory;
        MaxBytes = maxBytes;
        CompileLog = compileLog;
    }

    /// <summary>The engine whose settings these are (<c>wasmtime</c>, <c>wasmedge</c>).</summary>
    public string Engine { get; }

    /// <summary>The folder for rootfs modules' artifacts, or null when disabled.</summary>
    public string? Directory { get; }

    /// <summary>The size bound of <see cref="Directory"/>.</summary>
    public long MaxBytes { get; }

    /// <summary>The compile log, or null.</summary>
    public string? CompileLog { get; }

    /// <summary>The variable naming the cache folder of <paramref name="engine"/>: <c>CONTAINERD_SHIM_WASMTIME_CACHE</c>.</summary>
    public static string DirectoryVariable(string engine) => Variable(engine, "CACHE");

    /// <summary>The variable bounding the folder's size (bytes, or with a K, M or G suffix).</summary>
    public static string SizeVariable(string engine) => Variable(engine, "CACHE_SIZE");

    /// <summary>The variable naming the compile log.</summary>
    public static string CompileLogVariable(string engine) => Variable(engine, "COMPILE_LOG");

    /// <summary>The default folder (FHS: cached data an application can regenerate).</summary>
    public static string DefaultDirectory(string engine) => $"/var/cache/containerd-shim-{engine}";

    /// <summary>Reads <paramref name="engine"/>'s settings from the environment.</summary>
    /// <exception cref="ShimException">A variable has a value it cannot have; the message names it.</exception>
    public static CompileCache FromEnvironment(string engine)
    {
        var dir = Environment.GetEnvironmentVariable(DirectoryVariable(engine)) is { Length: > 0 } d ? d : DefaultDirectory(engine);
        var size = Environment.GetEnvironmentVariable(SizeVariable(engine)) is { Length: > 0 } s
            ? ByteSize.Parse(s) ?? throw new ShimException(StatusCode.InvalidArgument,
                $"{SizeVariable(engine)}={s}: not a size (use bytes, or a number with K, M or G)")
            : DefaultMaxBytes;
        var log = Environment.GetEnvironmentVariable(CompileLogVariable(engine)) is { Length: > 0 } l ? l : null;
        return new CompileCache(engine, dir == "off" ? null : dir, size, log);
    }

    /// <summary>
    /// The program compiled from <paramref name="source"/>: loaded from <paramref name="imageCache"/> (the content
    /// store of a wasm layer) or, without one, the cache folder, when an artifact under the compiler's key is there and
    /// the engine accepts it; otherwise compiled, recorded in the compile log and stored.
    /// </summary>
    public TProgram GetOrCompile<TProgram>(IProgramCompiler<TProgram> compiler, ProgramSource source, ICompiledModuleCache? imageCache = null)
        where TProgram : class
    {
        string? refusal = null;
        var cache = imageCache ?? ForRootfsModule(source.Digest, out refusal);
        var reason = refusal is null ? "cache off" : $"cache refused: {refusal}";
        if (cache is not null)
        {
            if (TryLoad(compiler, source, cache, out var problem) is { } cached)
            {
                return cached;
            }
            reason = problem ?? "not cached";
        }
        RecordCompilation(source.Digest, compiler.Key.CompatibilityHash, source.Name, reason);
        var compiled = compiler.Compile(source);
        if (cache is not null)
        {
            try
            {
                cache.Store(compiler.Key.Engine, compiler.Key.CompatibilityHash, compiler.Serialize(compiled));
            }
            catch (Exception e)
            {
                // Any failure to keep the artifact (full disk, containerd gone) costs the next start a compile only.
                ShimLog.Debug($"{compiler.Key.Engine}: keeping the compiled {UntrustedText.Excerpt(source.Name)} in {cache.Description} failed: {e.Message}");
            }
        }
        return compiled;
    }

    private static TProgram? TryLoad<TProgram>(IProgramCompiler<TProgram> compiler, ProgramSource source, ICompiledModuleCache cache, out string? problem)
        where TProgram : class
    {
        var key = compiler.Key;
        CompiledArtifact? artifact;
        try
        {
            artifact = cache.Find(key.Engine, key.CompatibilityHash, out problem);
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
        if (compiler.Load(source, artifact, out var refusal) is { } loaded)
        {
            return loaded;
        }
        problem = $"{key.Engine} refused {artifact.Digest}: {refusal}";
        try
        {
            cache.Discard(key.Engine, key.CompatibilityHash, artifact);
        }
        catch (Exception d)
        {
            ShimLog.Debug($"{key.Engine}: removing {artifact.Digest} from {cache.Description} failed: {d.Message}");
        }
        return null;
    }

    /// <summary>
    /// The folder cache for a rootfs module with <paramref name="moduleDigest"/>, or null when disabled or refused:
    /// the folder holds native code other containers run, so it is used only when root alone can write it and the
    /// path to it (<see cref="DirectoryModuleCache.OpenTrusted"/>). A refusal is logged at error level, once per
    /// process, and <paramref name="refusal"/> says why; modules are then compiled in memory.
    /// </summary>
    internal ICompiledModuleCache? ForRootfsModule(string moduleDigest, out string? refusal)
    {
        refusal = null;
        if (Directory is not { } dir)
        {
            return null;
        }
        var cache = DirectoryModuleCache.OpenTrusted(dir, MaxBytes, moduleDigest, out refusal);
        if (cache is null && Interlocked.Exchange(ref _refusalLogged, 1) == 0)
        {
            var message = $"{DirectoryVariable(Engine)}={dir} is not used, modules are compiled in memory: {refusal}";
            // A container that runs as another user cannot make or use root's folder: expected, not an error.
            if (Environment.IsPrivilegedProcess)
            {
                ShimLog.Error(message);
            }
            else
            {
                ShimLog.Debug(message);
            }
        }
        return cache;
    }

    /// <summary>Appends one line to the compile log, when there is one. Lines are short single writes in append mode,
    /// which concurrent instance processes cannot interleave.</summary>
    private void RecordCompilation(string moduleDigest, string compatibilityHash, string name, string reason)
    {
        if (CompileLog is not { } path)
        {
            return;
        }
        try
        {
            var line = Encoding.UTF8.GetBytes(
                $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {moduleDigest} {compatibilityHash} {name.Replace(' ', '_')} {reason.ReplaceLineEndings(" ")}\n");
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            stream.Write(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Debug($"compile log {path}: {e.Message}");
        }
    }

    private static string Variable(string engine, string suffix) => $"CONTAINERD_SHIM_{engine.ToUpperInvariant()}_{suffix}";
}
