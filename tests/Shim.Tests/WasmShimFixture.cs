using System.Text;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// One private containerd for the wasm shim's end-to-end tests, with the installed shim first on its PATH, the demo
/// image and a test image (hand-written modules and bad entrypoints) imported.
/// </summary>
public sealed class WasmShimFixture : IAsyncLifetime
{
    /// <summary>The runtime name every test passes to <c>ctr run --runtime</c>.</summary>
    public const string Runtime = "io.containerd.wasmtime.v1";

    /// <summary>The image with the test modules.</summary>
    public const string TestImageName = "localhost/runwasi-dotnet/wasm-shim-tests:latest";

    private readonly string _cacheDir = Directory.CreateTempSubdirectory("wasmtime-cache-").FullName;

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    /// <summary>Where the installed shim is.</summary>
    public string ShimBinDir { get; private set; } = "";

    /// <summary>The demo image's name.</summary>
    public string DemoImage => KnownImages.DemoName;

    public async Task InitializeAsync()
    {
        ShimBinDir = await ShimBinary.DirAsync();
        // The shim's compilation cache goes to a folder of this run, not the host's /var/cache.
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = ShimBinDir,
            Environment = new Dictionary<string, string> { ["CONTAINERD_SHIM_WASMTIME_CACHE"] = _cacheDir },
        });
        var demo = await TestImages.BuildDemoAsync();
        await Containerd.ImportAsync(demo.TarPath);
        var wasm = await TestImages.EnsureDemoWasmAsync();
        await Containerd.ImportAsync(TestImages.Build("wasm-shim-tests", TestImage(wasm)).TarPath);
    }

    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
        Directory.Delete(_cacheDir, recursive: true);
    }

    /// <summary>A unique container id.</summary>
    public static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary><c>ctr run --rm --runtime io.containerd.wasmtime.v1 [options] image id args...</c>.</summary>
    public Task<ProcessResult> RunAsync(string image, string id, IEnumerable<string> args, IEnumerable<string>? options = null,
        TimeSpan? timeout = null, CancellationToken ct = default) =>
        Containerd.CtrAsync(
            new[] { "run", "--rm", "--runtime", Runtime }.Concat(options ?? []).Concat([image, id]).Concat(args),
            timeout ?? TimeSpan.FromSeconds(90), ct);

    private static ImageDefinition TestImage(string demoWasm) => new()
    {
        Name = TestImageName,
        Platform = Platform.LinuxAmd64,
        Config = new ImageConfig { Entrypoint = ["/wasi-demo-app.wasm"], Env = ["PATH=/bin"] },
        Layers =
        [
            new FilesystemLayer(
            [
                LayerEntry.File("wasi-demo-app.wasm", demoWasm, Modes.Executable),
                LayerEntry.Directory("bin"),
                LayerEntry.Symlink("bin/demo", "/wasi-demo-app.wasm"),
                LayerEntry.Bytes("trap.wat", Encoding.UTF8.GetBytes(TestModules.Trap)),
                LayerEntry.Bytes("env.wat", Encoding.UTF8.GetBytes(TestModules.PrintEnv)),
                LayerEntry.Bytes("readme.txt", "not a module\n"u8.ToArray()),
                LayerEntry.Bytes("invalid.wasm", [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0, 0xff, 0xff]),
                LayerEntry.Symlink("host.wasm", "/etc/hostname"),
                LayerEntry.Symlink("up.wasm", "../../../../../etc/hostname"),
            ]),
        ],
    };
}

/// <summary>The tests that share one <see cref="WasmShimFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class WasmShimCollection : ICollectionFixture<WasmShimFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "wasm shim";
}
