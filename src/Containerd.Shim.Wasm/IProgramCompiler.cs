namespace Containerd.Shim.Wasm;

/// <summary>
/// What an engine gives <see cref="CompileCache"/> so it can keep compiled programs between containers: how to compile
/// a module, how to turn the result into an artifact, and how to load an artifact again. One object stands for one
/// engine configuration, named by <see cref="Key"/>; an engine with two configurations (Wasmtime's command engine and
/// its wasi:http host's) has two.
/// </summary>
/// <typeparam name="TProgram">The engine's compiled program (a module, a component, an AOT-compiled AST).</typeparam>
public interface IProgramCompiler<TProgram>
    where TProgram : class
{
    /// <summary>The engine name and compatibility hash this configuration's artifacts are kept under.</summary>
    ArtifactKey Key { get; }

    /// <summary>Compiles <paramref name="source"/>. Throws <see cref="EntrypointException"/> for a module the engine
    /// rejects; the cache records the compilation in the compile log before calling this.</summary>
    TProgram Compile(ProgramSource source);

    /// <summary>The artifact a later <see cref="Load"/> accepts, for a program <see cref="Compile"/> returned.</summary>
    byte[] Serialize(TProgram program);

    /// <summary>
    /// Loads an artifact a cache returned for <paramref name="source"/>: from <see cref="CompiledArtifact.Path"/>
    /// (memory-mapped where the engine can) or <see cref="CompiledArtifact.Bytes"/>. Returns null, with the engine's
    /// reason in <paramref name="refusal"/>, when the engine will not load it (another version, other settings or CPU
    /// features, a damaged file); the cache then discards it and compiles.
    /// </summary>
    TProgram? Load(ProgramSource source, CompiledArtifact artifact, out string? refusal);
}
