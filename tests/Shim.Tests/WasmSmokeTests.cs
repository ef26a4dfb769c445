using Xunit;

namespace Shim.Tests;

/// <summary>The cases that also run on containerd 1.7 and 2.x: hello and an exit code, through ctr.</summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Tier", "Smoke")]
public sealed class WasmSmokeTests(WasmShimFixture fx) : WasmSmokeCases<WasmShimFixture>(fx);

/// <summary>The smoke cases every wasm shim passes, run by one subclass per shim against its fixture.</summary>
public abstract class WasmSmokeCases<TFixture>(TFixture fx)
    where TFixture : WasmShimFixture
{
    [Fact]
    public async Task Echo_prints_hello_on_stdout_and_exiting_on_stderr()
    {
        var result = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("echo"), ["/wasi-demo-app.wasm", "echo", "hello"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
        Assert.Contains("exiting", result.Stderr);
    }

    [Fact]
    public async Task Exit_code_is_propagated_to_ctr()
    {
        var result = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("exit"), ["/wasi-demo-app.wasm", "exit", "42"]);
        Assert.Equal(42, result.ExitCode);
    }
}
