using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>A module WasmEdge has loaded with its native code (an AST module), and, right after it was compiled, the
/// artifact it was loaded from, which the compile cache stores.</summary>
internal sealed class WasmEdgeProgram(nint module, byte[]? artifact) : IDisposable
{
    /// <summary>The <c>WasmEdge_ASTModuleContext</c>.</summary>
    public nint Module { get; private set; } = module;

    /// <summary>The universal wasm it was loaded from, while the cache may still want it; null once dropped.</summary>
    public byte[]? Artifact { get; private set; } = artifact;

    /// <summary>Drops <see cref="Artifact"/>: a running container needs the loaded module only.</summary>
    public void ReleaseArtifact() => Artifact = null;

    public void Dispose()
    {
        if (Module != 0)
        {
            WasmEdge_ASTModuleDelete(Module);
            Module = 0;
        }
    }
}
