using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// The operator's bound on module size (<see cref="ModuleSizeLimit.Variable"/> in containerd's environment), through a
/// real containerd: a module in the rootfs or in a wasm layer past the bound is refused at Create, naming the bound and
/// the variable; a value the variable cannot have fails Create naming it. The demo module (about 250 KiB) stands in for
/// a tenant's oversized one.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ModuleSizeLimitTests(PrecompileFixture fx, ITestOutputHelper output) : IClassFixture<PrecompileFixture>
{
    [Fact]
    public async Task A_rootfs_module_past_the_bound_is_refused_and_a_smaller_bound_than_the_default_is_honoured()
    {
        var image = await ImportAsync(KnownImages.Demo(await TestImages.EnsureDemoWasmAsync(), Name("rootfs")));
        await WithLimitAsync("64K", async () =>
        {
            var refused = await RunAsync(image!.Name);
            Assert.False(refused.Succeeded, refused.ToString());
            Assert.Contains("more than the 65536 bytes a module may have (CONTAINERD_SHIM_WASM_MAX_MODULE_SIZE)", refused.ToString());
        });
        // Back on the default the same image runs: the bound, not the module, refused it.
        var ran = await RunAsync(image!.Name);
        Assert.True(ran.Succeeded, $"{ran}\n{fx.Containerd.LogTail()}");
        Assert.Equal("hello\n", ran.Stdout);
    }

    [Fact]
    public async Task A_wasm_layer_past_the_bound_is_refused_before_it_is_read()
    {
        if (fx.Containerd.Version == "1.6")
        {
            output.WriteLine($"{fx.Containerd.BinaryVersion} cannot import wasm-layer images; the layer bound is covered on 1.7 and 2.x");
            return;
        }
        var image = await ImportAsync(KnownImages.WasmLayer(await TestImages.EnsureDemoWasmAsync(), Name("layer")), allPlatforms: true);
        await WithLimitAsync("64K", async () =>
        {
            var refused = await RunAsync(image!.Name, module: "wasi-demo-app.wasm");
            Assert.False(refused.Succeeded, refused.ToString());
            Assert.Contains("more than the 65536 bytes a module may have (CONTAINERD_SHIM_WASM_MAX_MODULE_SIZE)", refused.ToString());
            Assert.Contains("layer sha256:", refused.ToString());
        });
    }

    [Fact]
    public async Task A_value_the_variable_cannot_have_fails_create_naming_it()
    {
        var image = await ImportAsync(KnownImages.Demo(await TestImages.EnsureDemoWasmAsync(), Name("bad-value")));
        await WithLimitAsync("lots", async () =>
        {
            var refused = await RunAsync(image!.Name);
            Assert.False(refused.Succeeded, refused.ToString());
            Assert.Contains("CONTAINERD_SHIM_WASM_MAX_MODULE_SIZE=lots: not a size", refused.ToString());
        });
    }

    [Theory]
    [InlineData(null, ModuleSizeLimit.DefaultBytes)]
    [InlineData("", ModuleSizeLimit.DefaultBytes)]
    [InlineData("1048576", 1 << 20)]
    [InlineData("64K", 64 << 10)]
    [InlineData(" 256m ", 256 << 20)]
    [InlineData("1G", 1 << 30)]
    public void Values_the_variable_can_have(string? text, int expected) => Assert.Equal(expected, ModuleSizeLimit.Parse(text));

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("3G")]
    [InlineData("12T")]
    [InlineData("lots")]
    [InlineData("1.5M")]
    public void Values_it_cannot_have_are_refused_naming_the_variable(string text)
    {
        var e = Assert.Throws<ShimException>(() => ModuleSizeLimit.Parse(text));
        Assert.StartsWith($"{ModuleSizeLimit.Variable}=", e.Message);
    }

    private static string Name(string tag) => $"localhost/module-size/{tag}-{Guid.NewGuid().ToString("N")[..8]}:latest";

    private async Task<TestImage> ImportAsync(ImageDefinition definition, bool allPlatforms = false)
    {
        var image = TestImages.Build($"module-size-{Guid.NewGuid().ToString("N")[..8]}", definition);
        try
        {
            await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: allPlatforms);
        }
        finally
        {
            File.Delete(image.TarPath);
        }
        return image;
    }

    // containerd's environment is what its shims inherit: set the bound, restart, run the body, and put it back.
    private async Task WithLimitAsync(string value, Func<Task> body)
    {
        fx.Environment[ModuleSizeLimit.Variable] = value;
        try
        {
            await fx.Containerd.RestartAsync();
            await body();
        }
        finally
        {
            fx.Environment.Remove(ModuleSizeLimit.Variable);
            await fx.Containerd.RestartAsync();
        }
    }

    private Task<ProcessResult> RunAsync(string image, string module = "/wasi-demo-app.wasm") =>
        fx.Containerd.CtrAsync(
            ["run", "--rm", "--runtime", WasmShimFixture.Runtime, image, WasmShimFixture.NewId("size"), module, "echo", "hello"],
            TimeSpan.FromSeconds(90));
}
