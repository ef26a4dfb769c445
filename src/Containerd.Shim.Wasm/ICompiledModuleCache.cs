namespace Containerd.Shim.Wasm;

/// <summary>
/// Where compiled artifacts of one module are kept between containers. An engine asks it before compiling and hands
/// it the artifact after compiling; entries are keyed by an <see cref="ArtifactKey"/> (engine name and compatibility hash),
/// so an artifact of another engine build or configuration is never returned.
/// </summary>
public interface ICompiledModuleCache
{
    /// <summary>Where the cache lives, for messages (e.g. <c>content store</c>, a folder).</summary>
    string Description { get; }

    /// <summary>
    /// The artifact compiled for this module by <paramref name="engine"/> with <paramref name="compatibilityHash"/>,
    /// after checking its digest; null on a miss or when the entry was missing or corrupt (then it is removed, and
    /// <paramref name="problem"/> says why).
    /// </summary>
    CompiledArtifact? Find(string engine, string compatibilityHash, out string? problem);

    /// <summary>Keeps <paramref name="artifact"/> for the next container. Best effort: throws only for the caller to
    /// log; the container starts either way.</summary>
    void Store(string engine, string compatibilityHash, byte[] artifact);

    /// <summary>Removes an artifact <see cref="Find"/> returned that the engine then refused to load.</summary>
    void Discard(string engine, string compatibilityHash, CompiledArtifact artifact);
}

/// <summary>A compiled artifact from a cache: a file the engine may memory-map, or bytes. Dispose it once the engine
/// has loaded it.</summary>
/// <param name="Digest">The artifact's <c>sha256:…</c> digest, already verified against its content.</param>
/// <param name="Path">A file holding exactly the artifact, or null; with <see cref="Handle"/>, the
/// <c>/proc/self/fd</c> name of that descriptor.</param>
/// <param name="Bytes">The artifact, when there is no file.</param>
public sealed record CompiledArtifact(string Digest, string? Path, ReadOnlyMemory<byte> Bytes) : IDisposable
{
    /// <summary>The open file whose content <see cref="Digest"/> is, when the cache verified it through a descriptor:
    /// <see cref="Path"/> then names this descriptor, so the engine loads exactly what was verified.</summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle? Handle { get; init; }

    /// <summary>Closes <see cref="Handle"/>; a memory mapping the engine made of it stays valid.</summary>
    public void Dispose() => Handle?.Dispose();
}
