namespace Containerd.Shim.Wasm;

/// <summary>
/// What a compiled artifact is valid for: the engine that compiled it and a hash of everything that decides whether
/// it may be loaded (the engine's version, the host architecture, every setting that changes code generation). An
/// artifact is found only under the key it was stored with, so another build or configuration never receives it.
/// </summary>
/// <param name="Engine">The engine's name in cache paths and label keys (<c>wasmtime</c>, <c>wasmedge</c>).</param>
/// <param name="CompatibilityHash">Lowercase hex, usable in file names and containerd label keys.</param>
public sealed record ArtifactKey(string Engine, string CompatibilityHash)
{
    /// <summary>A key whose hash is the first 16 hex digits of the sha256 of <paramref name="description"/>, the text
    /// that lists what the artifacts depend on.</summary>
    public static ArtifactKey Describe(string engine, string description) =>
        new(engine, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(description)))[..16]);
}
