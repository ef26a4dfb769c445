using System.Runtime.InteropServices;
using Containerd.Shim.Wasm;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>
/// WasmEdge's side of <see cref="CompileCache"/>. LLVM compiles the whole module ahead of time into a "universal" wasm:
/// the module with its native code in a custom section, which is the artifact, and which the loader takes from memory.
/// The compiled code is interruptible (it checks a stop flag in loops, which WasmEdge's asynchronous cancel needs).
/// The key names the library's version, the architecture and those settings: WasmEdge's loader falls back to its
/// interpreter, silently, for native code it cannot use, so an artifact must never reach another build.
/// </summary>
internal sealed unsafe class WasmEdgeProgramCompiler : IProgramCompiler<WasmEdgeProgram>
{
    /// <summary>The engine name of the artifacts and the cache's settings.</summary>
    public const string Engine = "wasmedge";

    /// <inheritdoc/>
    public ArtifactKey Key { get; } = ArtifactKey.Describe(Engine, Describe(WasmEdgeLibrary.Version, RuntimeInformation.OSArchitecture));

    /// <summary>What an artifact depends on, as the compatibility hash is taken of.</summary>
    public static string Describe(string version, Architecture architecture) =>
        $"wasmedge {version}; {(architecture == Architecture.X64 ? "x86_64" : architecture.ToString().ToLowerInvariant())}; " +
        $"opt-level={OptimizationName}; interruptible";

    private const string OptimizationName = "O2";

    /// <inheritdoc/>
    public WasmEdgeProgram Compile(ProgramSource source)
    {
        var artifact = Compile(source.Name, source.Bytes.Span);
        return new WasmEdgeProgram(Load(source.Name, artifact), artifact);
    }

    /// <inheritdoc/>
    public byte[] Serialize(WasmEdgeProgram program) =>
        program.Artifact ?? throw new InvalidOperationException("the compiled artifact was already released");

    /// <inheritdoc/>
    public WasmEdgeProgram? Load(ProgramSource source, CompiledArtifact artifact, out string? refusal)
    {
        try
        {
            var bytes = artifact.Path is { } path ? File.ReadAllBytes(path) : artifact.Bytes.ToArray();
            refusal = null;
            return new WasmEdgeProgram(Load(source.Name, bytes), null);
        }
        catch (Exception e) when (e is EntrypointException or IOException)
        {
            refusal = e.Message;
            return null;
        }
    }

    // The one place a module is compiled. The compiler writes files only, and next to its output (the object file
    // and the linked library), so it works in a private temporary folder of the host's that is removed at once.
    private static byte[] Compile(string name, ReadOnlySpan<byte> bytes)
    {
        var dir = Directory.CreateTempSubdirectory("wasmedge-aot-");
        var conf = WasmEdge_ConfigureCreate();
        nint compiler = 0;
        try
        {
            WasmEdge_ConfigureCompilerSetOptimizationLevel(conf, OptimizationO2);
            WasmEdge_ConfigureCompilerSetOutputFormat(conf, OutputFormatWasm);
            WasmEdge_ConfigureCompilerSetInterruptible(conf, true);
            compiler = WasmEdge_CompilerCreate(conf);
            var output = Path.Combine(dir.FullName, "module.wasm");
            Result compiled;
            fixed (byte* input = bytes)
            {
                compiled = WasmEdge_CompilerCompileFromBuffer(compiler, input, (ulong)bytes.Length, output);
            }
            if (!WasmEdge_ResultOK(compiled))
            {
                throw new EntrypointException(EntrypointError.InvalidModule, name, $"WasmEdge's compiler refused it: {Message(compiled)}");
            }
            return File.ReadAllBytes(output);
        }
        finally
        {
            if (compiler != 0)
            {
                WasmEdge_CompilerDelete(compiler);
            }
            WasmEdge_ConfigureDelete(conf);
            dir.Delete(recursive: true);
        }
    }

    // An artifact parsed with its native code; the caller owns the returned AST module.
    private static nint Load(string name, byte[] artifact) => WasmEdgeModule.Parse(name, artifact);
}
