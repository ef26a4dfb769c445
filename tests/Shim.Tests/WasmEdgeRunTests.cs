using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>The shared end-to-end cases (echo, env, <c>#function</c>, PATH lookup, trap, SIGKILL and SIGTERM, bad
/// entrypoints, events, clean-up) on the WasmEdge shim.</summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WasmEdgeRunTests(WasmEdgeShimFixture fx) : WasmRunCases<WasmEdgeShimFixture>(fx);

/// <summary>The smoke cases on the WasmEdge shim, which also run on containerd 1.7 and 2.x.</summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Tier", "Smoke")]
public sealed class WasmEdgeSmokeTests(WasmEdgeShimFixture fx) : WasmSmokeCases<WasmEdgeShimFixture>(fx);

/// <summary>The demo as a wasm layer (an image with no rootfs) on the WasmEdge shim; containerd 1.6 cannot import
/// such images, so it runs on 1.7 and 2.x only.</summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Tier", "Smoke")]
public sealed class WasmEdgeWasmLayerTests(WasmEdgeShimFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task Wasm_layer_image_runs_echo_hello()
    {
        if (fx.Containerd.Version == "1.6")
        {
            output.WriteLine($"skipped: {fx.Containerd.BinaryVersion} (1.6) cannot import wasm-layer images; run with CONTAINERD_VERSION=1.7 or 2");
            return;
        }
        var image = await TestImages.BuildDemoWasmLayerAsync();
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);
        var result = await fx.RunAsync(image.Name, WasmShimFixture.NewId("we-oci"), ["wasi-demo-oci.wasm", "echo", "hello"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
    }
}

/// <summary>The memory-limit cases on the WasmEdge shim: its guest's linear memory is capped by page count.</summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WasmEdgeMemoryBudgetTests(WasmEdgeShimFixture fx, ITestOutputHelper output)
    : MemoryBudgetCases<WasmEdgeShimFixture>(fx, output);
