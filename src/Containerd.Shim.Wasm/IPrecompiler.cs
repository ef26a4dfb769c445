namespace Containerd.Shim.Wasm;

/// <summary>
/// Optional capability of an <see cref="IEngine"/>: compiles a module ahead of time so a later container of the same
/// module skips compilation (see <see cref="ICompiledModuleCache"/>).
/// </summary>
public interface IPrecompiler
{
    /// <summary>Compiles <paramref name="module"/> and returns the engine's native artifact.</summary>
    byte[] Precompile(ReadOnlySpan<byte> module, ModuleFormat format);

    /// <summary>Identifies the engine build and settings an artifact is valid for; a cached artifact with another
    /// hash must be compiled again. Lowercase hex, usable in file names and containerd label keys.</summary>
    string CompatibilityHash { get; }
}
