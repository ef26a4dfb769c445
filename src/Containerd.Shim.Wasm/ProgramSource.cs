namespace Containerd.Shim.Wasm;

/// <summary>A module or component to compile or find compiled: its name for messages, its bytes and format, and the
/// digest that keys it in the caches. A class, not a record: a copy with other bytes must not keep the old digest.</summary>
/// <param name="name">How the program is named in errors and the compile log (the entrypoint's name).</param>
/// <param name="bytes">The module or component as it was read.</param>
/// <param name="format">Binary module, text module or component.</param>
public sealed class ProgramSource(string name, ReadOnlyMemory<byte> bytes, ModuleFormat format)
{
    /// <summary>How the program is named in errors and the compile log.</summary>
    public string Name => name;

    /// <summary>The module or component as it was read.</summary>
    public ReadOnlyMemory<byte> Bytes => bytes;

    /// <summary>Binary module, text module or component.</summary>
    public ModuleFormat Format => format;

    /// <summary>The <c>sha256:…</c> digest of <see cref="Bytes"/>.</summary>
    public string Digest { get; } = DirectoryModuleCache.DigestOf(bytes.Span);
}
