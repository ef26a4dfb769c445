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

/// <summary>The memory-limit cases on the WasmEdge shim: its guest's linear memory is capped by page count.</summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WasmEdgeMemoryBudgetTests(WasmEdgeShimFixture fx, ITestOutputHelper output)
    : MemoryBudgetCases<WasmEdgeShimFixture>(fx, output);
