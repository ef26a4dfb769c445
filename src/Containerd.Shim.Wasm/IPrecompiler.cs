namespace Containerd.Shim.Wasm;

/// <summary>
/// Optional capability of an <see cref="IEngine"/>: compiles a module ahead of time so a later container of the same
/// image skips compilation.
/// </summary>
public interface IPrecompiler
{
    /// <summary>Compiles <paramref name="wasm"/> into the engine's native artifact.</summary>
    byte[] Precompile(ReadOnlySpan<byte> wasm);

    /// <summary>Identifies the engine build and settings an artifact is valid for; a cached artifact with another
    /// hash must be compiled again.</summary>
    string CompatibilityHash { get; }
}
