using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Wasmtime;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The daemon's compiled modules and components on disk, so a restarted daemon loads what it compiled before instead
/// of compiling every tenant's program again. It is the same folder normal mode uses
/// (<see cref="CompilationCache.DirectoryVariable"/> in the daemon's environment, root's alone, bounded by
/// <see cref="CompilationCache.SizeVariable"/>, least recently used entries evicted first), under an engine name of its
/// own: the daemon's engine has settings normal mode's does not (epoch interruption, the pooling allocator), so its
/// artifacts get a compatibility hash of their own. A miss, a refused artifact or an unusable folder costs a compile,
/// never a failed Create.
/// </summary>
internal sealed class SharedArtifactCache(CompilationCache settings, string engineDescription)
{
    /// <summary>The engine name the daemon's artifacts are kept under.</summary>
    public const string EngineName = "wasmtimed";

    private readonly string _hash = CompilationCache.Hash($"{settings.Description}; shared daemon; {engineDescription}");

    /// <summary>What the artifacts' compatibility hash is made of.</summary>
    public string CompatibilityHash => _hash;

    /// <summary>
    /// The program compiled from <paramref name="bytes"/>: loaded from the folder when an artifact of this engine is
    /// there and Wasmtime accepts it, otherwise <paramref name="compile"/>d (and recorded in the compile log) and kept.
    /// </summary>
    public T GetOrCompile<T>(string name, byte[] bytes, Func<T> compile, Func<CompiledArtifact, T> load, Func<T, byte[]> serialize)
        where T : class
    {
        var digest = DirectoryModuleCache.DigestOf(bytes);
        var cache = settings.ForRootfsModule(digest, out var refusal);
        var reason = refusal is null ? "cache off" : $"cache refused: {refusal}";
        if (cache is not null)
        {
            if (TryLoad(cache, load, out var problem) is { } cached)
            {
                return cached;
            }
            reason = problem ?? "not cached";
        }
        settings.RecordCompilation(digest, _hash, name, reason);
        var compiled = compile();
        if (cache is not null)
        {
            try
            {
                cache.Store(EngineName, _hash, serialize(compiled));
            }
            catch (Exception e)
            {
                // A full disk costs the next daemon a compile, nothing more.
                ShimLog.Debug($"keeping the compiled {UntrustedText.Excerpt(name)} in {cache.Description} failed: {e.Message}");
            }
        }
        return compiled;
    }

    private T? TryLoad<T>(ICompiledModuleCache cache, Func<CompiledArtifact, T> load, out string? problem)
        where T : class
    {
        CompiledArtifact? artifact;
        try
        {
            artifact = cache.Find(EngineName, _hash, out problem);
        }
        catch (Exception e)
        {
            problem = $"cache unusable: {e.Message}";
            return null;
        }
        if (artifact is null)
        {
            return null;
        }
        // The engine maps the file through the descriptor the cache checked; the mapping outlives the descriptor.
        using var _ = artifact;
        try
        {
            return load(artifact);
        }
        catch (Exception e) when (e is WasmtimeException or IOException or InvalidOperationException)
        {
            // Wasmtime checks the artifact's version, settings and CPU features again; a refused one is replaced.
            problem = $"wasmtime refused {artifact.Digest}: {GuestExit.OneLine(e.Message)}";
            try
            {
                cache.Discard(EngineName, _hash, artifact);
            }
            catch (Exception d)
            {
                ShimLog.Debug($"removing {artifact.Digest} from {cache.Description} failed: {d.Message}");
            }
            return null;
        }
    }
}
