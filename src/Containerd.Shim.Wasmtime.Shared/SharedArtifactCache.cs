using Containerd.Shim.Wasm;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The daemon's compiled modules and components on disk, so a restarted daemon loads what it compiled before instead
/// of compiling every tenant's program again. It is the wasm layer's <see cref="CompileCache"/> under the Wasmtime
/// settings normal mode uses (the same folder, root's alone, bounded, least recently used entries evicted first), with
/// artifacts kept under an engine name of their own: the daemon's engine has settings normal mode's does not (epoch
/// interruption, the pooling allocator), so its artifacts get a compatibility hash of their own.
/// </summary>
internal sealed class SharedArtifactCache(WasmtimeSettings settings, string engineDescription)
{
    /// <summary>The engine name the daemon's artifacts are kept under.</summary>
    public const string EngineName = "wasmtimed";

    /// <summary>The key of the daemon's artifacts.</summary>
    public ArtifactKey Key { get; } = ArtifactKey.Describe(EngineName, $"{settings.Description}; shared daemon; {engineDescription}");

    /// <summary>
    /// The program compiled from <paramref name="bytes"/>: loaded from the folder when an artifact of this engine is
    /// there and Wasmtime accepts it, otherwise <paramref name="compile"/>d (and recorded in the compile log) and kept.
    /// </summary>
    public T GetOrCompile<T>(string name, byte[] bytes, ModuleFormat format, Func<T> compile, Func<CompiledArtifact, T> load, Func<T, byte[]> serialize)
        where T : class =>
        settings.Cache.GetOrCompile(new WasmtimeProgramCompiler<T>(Key, _ => compile(), (_, artifact) => load(artifact), serialize),
            new ProgramSource(name, bytes, format));
}
