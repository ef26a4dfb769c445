using Containerd.Shim.Wasm;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The wasm shim fixture for <c>containerd-shim-wasmedge-v1</c>: the same private containerd, demo and test image,
/// with the text modules also assembled to binary (WasmEdge runs binary modules only) and a module that loops
/// forever, plus busybox for the Linux containers the shim hands to runc. The test process never loads libwasmedge
/// (its glibc may be older than the library's): every case goes through the installed shim.
/// </summary>
public sealed class WasmEdgeShimFixture : WasmShimFixture
{
    /// <summary>The runtime name of the WasmEdge shim.</summary>
    public const string WasmEdgeRuntime = "io.containerd.wasmedge.v1";

    /// <summary>A module whose <c>_start</c> spins in a loop and never calls the host.</summary>
    public const string BusyLoop = """(module (func (export "_start") (loop $spin (br $spin))))""";

    /// <summary>Busybox's image name.</summary>
    public string BusyboxImage { get; private set; } = "";

    public WasmEdgeShimFixture()
        : base(WasmEdgeRuntime)
    {
    }

    /// <summary>The WasmEdge shim's compile log: one line per module it really compiled.</summary>
    public string CompileLog { get; private set; } = "";

    /// <inheritdoc/>
    protected override Dictionary<string, string> ShimEnvironment(string cacheDir)
    {
        var env = base.ShimEnvironment(cacheDir);
        CompileLog = Path.Combine(cacheDir, "wasmedge-compile.log");
        env[CompileCache.DirectoryVariable("wasmedge")] = Path.Combine(cacheDir, "wasmedge");
        env[CompileCache.CompileLogVariable("wasmedge")] = CompileLog;
        return env;
    }

    /// <inheritdoc/>
    public override string ShimName => "containerd-shim-wasmedge-v1";

    /// <inheritdoc/>
    public override string TrapModule => "/trap.wasm";

    /// <inheritdoc/>
    public override string EnvModule => "/env.wasm";

    /// <summary>Measured: 14.3 MiB anonymous memory charged when the guest starts (libLLVM's relocated data and what the
    /// compile leaves in the heap after a trim), so a 64 MiB limit leaves the guest 44 MiB where Wasmtime's get 48 or
    /// more.</summary>
    public override int EngineHeldMib => 6;

    /// <inheritdoc/>
    protected override string TestImageStem => "wasmedge-shim-tests";

    /// <inheritdoc/>
    protected override async Task<IReadOnlyList<LayerEntry>> ExtraTestFilesAsync()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await Containerd.ImportAsync(busybox.TarPath);
        BusyboxImage = busybox.Name;
        return
        [
            LayerEntry.Bytes("trap.wasm", await Wat2Wasm.AssembleAsync(TestModules.Trap)),
            LayerEntry.Bytes("env.wasm", await Wat2Wasm.AssembleAsync(TestModules.PrintEnv)),
            LayerEntry.Bytes("loop.wasm", await Wat2Wasm.AssembleAsync(BusyLoop)),
        ];
    }
}

/// <summary>The tests that share one <see cref="WasmEdgeShimFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class WasmEdgeShimCollection : ICollectionFixture<WasmEdgeShimFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "wasmedge shim";
}
