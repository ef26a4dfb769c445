using System.Text;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// One private containerd for the wasm shim's end-to-end tests, with the installed shims first on its PATH, the demo
/// image and a test image (hand-written modules and bad entrypoints) imported. The tests of this class run the
/// Wasmtime shim; a subclass picks another runtime (and may add files to the test image).
/// </summary>
public class WasmShimFixture : IAsyncLifetime
{
    /// <summary>The Wasmtime shim's runtime name, which the tests of this fixture pass to <c>ctr run --runtime</c>.</summary>
    public const string Runtime = "io.containerd.wasmtime.v1";

    /// <summary>A fixture for the Wasmtime shim.</summary>
    public WasmShimFixture()
        : this(Runtime)
    {
    }

    /// <summary>A fixture whose <see cref="RunAsync"/> uses <paramref name="runtime"/>.</summary>
    protected WasmShimFixture(string runtime) => RuntimeName = runtime;

    /// <summary>The runtime <see cref="RunAsync"/> passes to <c>ctr run --runtime</c>.</summary>
    public string RuntimeName { get; }

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
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = ShimBinDir,
            Environment = ShimEnvironment(_cacheDir),
        });
        var demo = await TestImages.BuildDemoAsync();
        await Containerd.ImportAsync(demo.TarPath);
        var wasm = await TestImages.EnsureDemoWasmAsync();
        await Containerd.ImportAsync(TestImages.Build(TestImageStem, TestImage(wasm, await ExtraTestFilesAsync())).TarPath);
    }

    /// <summary>The environment containerd passes its shims: their compile caches in <paramref name="cacheDir"/>, a
    /// folder of this run, rather than the host's /var/cache.</summary>
    protected virtual Dictionary<string, string> ShimEnvironment(string cacheDir) =>
        new() { ["CONTAINERD_SHIM_WASMTIME_CACHE"] = cacheDir };

    /// <summary>The file name of the shim executable <see cref="RuntimeName"/> selects.</summary>
    public virtual string ShimName => ShimBinary.Name;

    /// <summary>The test image's module that traps at once (<c>unreachable</c>).</summary>
    public virtual string TrapModule => "/trap.wat";

    /// <summary>The test image's module that prints its environment, NUL-separated.</summary>
    public virtual string EnvModule => "/env.wat";

    /// <summary>How many MiB more than Wasmtime the engine keeps charged to a container's cgroup when its guest starts
    /// (and so less of a memory limit the guest gets).</summary>
    public virtual int EngineHeldMib => 0;

    /// <summary>The start of the test image's tarball name (one per distinct content).</summary>
    protected virtual string TestImageStem => "wasm-shim-tests";

    /// <summary>Files a subclass adds to the test image, in a layer of their own.</summary>
    protected virtual Task<IReadOnlyList<LayerEntry>> ExtraTestFilesAsync() => Task.FromResult<IReadOnlyList<LayerEntry>>([]);

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

    /// <summary><c>ctr run --rm --runtime &lt;RuntimeName&gt; [options] image id args...</c>.</summary>
    public Task<ProcessResult> RunAsync(string image, string id, IEnumerable<string> args, IEnumerable<string>? options = null,
        TimeSpan? timeout = null, CancellationToken ct = default) =>
        Containerd.CtrAsync(
            new[] { "run", "--rm", "--runtime", RuntimeName }.Concat(options ?? []).Concat([image, id]).Concat(args),
            timeout ?? TimeSpan.FromSeconds(90), ct);

    private static ImageDefinition TestImage(string demoWasm, IReadOnlyList<LayerEntry> extra) => new()
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
            .. extra.Count > 0 ? [new FilesystemLayer(extra)] : Array.Empty<Layer>(),
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
