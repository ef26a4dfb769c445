using System.Text;
using Containerd.Api.Client;
using Containerd.Services.Containers.V1;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// Images that carry the module as OCI wasm layers (runwasi's wasm-layer images and CNCF wasm artifacts): the shim
/// finds the image through containerd's API and runs the layer args[0] names. containerd 1.6.20, the default here,
/// refuses to import such images, so on 1.6 every case returns early and says why.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Tier", "Smoke")]
public sealed class OciLayerTests(WasmShimFixture fx, ITestOutputHelper output)
{
    private const string ArtifactConfigMediaType = "application/vnd.wasm.config.v0+json";

    private const string MultiLayerImage = "localhost/runwasi-dotnet/oci-multi-layer:latest";

    [Fact]
    public async Task Wasm_layer_image_runs_echo_hello()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        var image = await TestImages.BuildDemoWasmLayerAsync();
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);

        var result = await RunWasmImageAsync(image.Name, WasmShimFixture.NewId("oci"), ["wasi-demo-oci.wasm", "echo", "hello"]);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
    }

    [Fact]
    public async Task Ctr_run_of_a_wasm_artifact_prints_hello_or_is_refused_by_ctr_itself()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        var image = await TestImages.BuildDemoArtifactAsync();
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);

        var result = await RunWasmImageAsync(image.Name, WasmShimFixture.NewId("artifact"), ["module.wasm", "echo", "hello"]);

        if (result.Stderr.Contains("unknown image config media type", StringComparison.Ordinal))
        {
            // ctr itself refuses: it reads the image config to build the spec before any shim is involved.
            output.WriteLine($"containerd {fx.Containerd.BinaryVersion}: ctr run refuses the artifact: {result.Stderr.Trim()}");
            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains(ArtifactConfigMediaType, result.Stderr);
            return;
        }
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
    }

    [Fact]
    public async Task Wasm_artifact_runs_when_a_client_builds_the_spec_itself()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        var image = await TestImages.BuildDemoArtifactAsync();
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);
        var id = WasmShimFixture.NewId("artifact-api");
        using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
        // What ctr cannot do for an artifact: a container record naming the image, with a spec written here.
        await client.Containers.CreateAsync(new CreateContainerRequest
        {
            Container = new Container
            {
                Id = id,
                Image = image.Name,
                Runtime = new Container.Types.Runtime { Name = WasmShimFixture.Runtime },
                Spec = RuntimeSpecAny.Spec(TestModules.ConfigJson(["wasi-demo-oci-artifact.wasm", "echo", "hello"], [])),
            },
        });
        try
        {
            var result = await fx.Containerd.CtrAsync(["task", "start", id], TimeSpan.FromSeconds(90));

            Assert.True(result.Succeeded, result.ToString());
            Assert.Equal("hello\n", result.Stdout);
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("containers", "delete", id);
        }
    }

    [Fact]
    public async Task Several_layers_are_selected_by_title()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        await ImportMultiLayerImageAsync();

        var demo = await RunWasmImageAsync(MultiLayerImage, WasmShimFixture.NewId("multi"), ["demo.wasm", "echo", "picked"]);
        var trap = await RunWasmImageAsync(MultiLayerImage, WasmShimFixture.NewId("multi"), ["/trap.wat"]);

        Assert.True(demo.Succeeded, demo.ToString());
        Assert.Equal("picked\n", demo.Stdout);
        // 134 is a trap: the other layer ran, not the demo.
        Assert.True(trap.ExitCode == 134, trap.ToString());
    }

    [Fact]
    public async Task Unknown_module_name_fails_create_listing_the_layers()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        await ImportMultiLayerImageAsync();

        var result = await RunWasmImageAsync(MultiLayerImage, WasmShimFixture.NewId("unknown"), ["nosuch.wasm"]);

        Assert.NotEqual(0, result.ExitCode);
        var message = result.Stdout + result.Stderr;
        Assert.Contains("nosuch.wasm", message);
        Assert.Contains("demo.wasm", message);
        Assert.Contains("trap.wat", message);
    }

    [Fact]
    public async Task Make_load_oci_then_the_readme_ctr_run_line_prints_hello()
    {
        if (SkipOnContainerd16())
        {
            return;
        }
        var load = await ProcessRunner.RunAsync("make",
            ["--no-print-directory", "-C", RepositoryLayout.RepoRoot, "load/oci",
             $"CONTAINERD_ADDRESS={fx.Containerd.Address}", $"CTR={fx.Containerd.CtrPath}", $"OUT={RepositoryLayout.OutDir}"],
            new Dictionary<string, string> { ["CONTAINERD_NAMESPACE"] = fx.Containerd.Namespace },
            TimeSpan.FromMinutes(5));
        Assert.True(load.Succeeded, load.ToString());

        var line = File.ReadLines(Path.Combine(RepositoryLayout.RepoRoot, "README.md"))
            .Single(l => l.Contains("ctr run --rm --runtime=io.containerd.wasmtime.v1 ghcr.io/containerd/runwasi/wasi-demo-oci:", StringComparison.Ordinal));
        // The line quotes nothing but single words ('hello'), so splitting on blanks is enough.
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => w.Trim('\'')).ToArray();
        Assert.Equal(["sudo", "ctr", "run"], words.Take(3));

        var result = await fx.Containerd.CtrAsync(words.Skip(2).ToArray());
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
    }

    [Fact]
    public async Task Plain_rootfs_image_still_runs()
    {
        var result = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("plain"), ["/wasi-demo-app.wasm", "echo", "hello"]);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
    }

    // No --platform: containerd 1.7 and 2.x run a wasip1/wasm-only image as runwasi's README shows it.
    private Task<ProcessResult> RunWasmImageAsync(string image, string id, IEnumerable<string> args) =>
        fx.RunAsync(image, id, args);

    private async Task ImportMultiLayerImageAsync()
    {
        var demo = await TestImages.EnsureDemoWasmAsync();
        var trap = Path.Combine(TestImages.ImagesDir, "oci-layer-trap.wat");
        Directory.CreateDirectory(TestImages.ImagesDir);
        var text = Encoding.UTF8.GetBytes(TestModules.Trap);
        if (!File.Exists(trap) || !File.ReadAllBytes(trap).AsSpan().SequenceEqual(text))
        {
            // Renamed into place: parallel test runs may write it at the same time.
            var partial = $"{trap}.{Environment.ProcessId}.partial";
            await File.WriteAllBytesAsync(partial, text);
            File.Move(partial, trap, overwrite: true);
        }
        var image = TestImages.Build("oci-multi-layer", new ImageDefinition
        {
            Name = MultiLayerImage,
            Platform = Platform.Wasip1,
            Config = new ImageConfig { Entrypoint = ["demo.wasm"] },
            Layers =
            [
                new BlobLayer(MediaTypes.WasmComponentLayer, demo, "demo.wasm"),
                new BlobLayer(MediaTypes.WasmComponentLayer, trap, "trap.wat"),
            ],
        });
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);
    }

    private bool SkipOnContainerd16()
    {
        if (fx.Containerd.Version != "1.6")
        {
            return false;
        }
        output.WriteLine($"skipped: {fx.Containerd.BinaryVersion} (1.6) cannot import wasm-layer images; run with CONTAINERD_VERSION=1.7 or 2");
        return true;
    }
}
