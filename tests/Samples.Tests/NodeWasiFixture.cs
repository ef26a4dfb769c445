using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Samples.Tests;

/// <summary>
/// One private containerd with the sample shims (built from the packages by <c>make samples</c>) first on its PATH,
/// the demo image and an image with an environment-printing module imported.
/// </summary>
public sealed class NodeWasiFixture : IAsyncLifetime
{
    /// <summary>The runtime name of the Node.js engine's shim.</summary>
    public const string Runtime = "io.containerd.nodewasi.v1";

    /// <summary>The image holding <c>/env.wasm</c>, which writes its environment NUL-separated to stdout.</summary>
    public const string EnvImage = "localhost/runwasi-dotnet/nodewasi-env:latest";

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var bin = Environment.GetEnvironmentVariable("SAMPLES_BIN_DIR");
        if (string.IsNullOrEmpty(bin) || !File.Exists(Path.Combine(bin, "containerd-shim-nodewasi-v1")))
        {
            throw new InvalidOperationException("SAMPLES_BIN_DIR must name the folder `make samples` installs the sample shims to");
        }
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions { ShimBinDir = Path.GetFullPath(bin) });
        await Containerd.ImportAsync((await TestImages.BuildDemoAsync()).TarPath);
        await Containerd.ImportAsync(TestImages.Build("nodewasi-env", new ImageDefinition
        {
            Name = EnvImage,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = ["/env.wasm"], Env = ["PATH=/bin"] },
            Layers = [new FilesystemLayer([LayerEntry.Bytes("env.wasm", await Wat2Wasm.AssembleAsync(PrintEnvWat))])],
        }).TarPath);
    }

    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
    }

    /// <summary>A unique container id.</summary>
    public static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary><c>ctr run --rm --runtime io.containerd.nodewasi.v1 [options] image id args...</c>.</summary>
    public Task<ProcessResult> RunAsync(string image, string id, IEnumerable<string> args, IEnumerable<string>? options = null,
        CancellationToken ct = default) =>
        Containerd.CtrAsync(
            new[] { "run", "--rm", "--runtime", Runtime }.Concat(options ?? []).Concat([image, id]).Concat(args),
            TimeSpan.FromSeconds(90), ct);

    // environ_get into memory, then one fd_write of the whole block (NUL-separated NAME=value entries).
    private const string PrintEnvWat = """
        (module
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "_start")
            (drop (call $sizes (i32.const 0) (i32.const 4)))
            (drop (call $get (i32.const 1024) (i32.const 8192)))
            (i32.store (i32.const 16) (i32.const 8192))
            (i32.store (i32.const 20) (i32.load (i32.const 4)))
            (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
        """;
}

[CollectionDefinition(Name)]
public sealed class NodeWasiCollection : ICollectionFixture<NodeWasiFixture>
{
    public const string Name = "nodewasi";
}
