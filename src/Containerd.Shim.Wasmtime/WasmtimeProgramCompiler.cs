using Containerd.Shim.Wasm;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// One Wasmtime configuration's side of <see cref="CompileCache"/>: how it compiles, serializes and deserializes a
/// program (a core module, a component or a wasi:http proxy). Wasmtime checks an artifact's engine version, settings
/// and CPU features itself when it deserializes; what it refuses (the wasi:http host's C API reports refusals as
/// <see cref="InvalidOperationException"/>) is handed back as a refusal, so the cache discards it and compiles.
/// </summary>
internal sealed class WasmtimeProgramCompiler<TProgram>(
    ArtifactKey key,
    Func<ProgramSource, TProgram> compile,
    Func<ProgramSource, CompiledArtifact, TProgram> load,
    Func<TProgram, byte[]> serialize) : IProgramCompiler<TProgram>
    where TProgram : class
{
    /// <inheritdoc/>
    public ArtifactKey Key => key;

    /// <inheritdoc/>
    public TProgram Compile(ProgramSource source) => compile(source);

    /// <inheritdoc/>
    public byte[] Serialize(TProgram program) => serialize(program);

    /// <inheritdoc/>
    public TProgram? Load(ProgramSource source, CompiledArtifact artifact, out string? refusal)
    {
        try
        {
            refusal = null;
            return load(source, artifact);
        }
        catch (Exception e) when (e is WasmtimeException or IOException or InvalidOperationException)
        {
            refusal = GuestExit.OneLine(e.Message);
            return null;
        }
    }
}
