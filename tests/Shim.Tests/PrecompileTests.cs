using System.Security.Cryptography;
using Containerd.Api.Client;
using Containerd.Services.Containers.V1;
using Containerd.Services.Content.V1;
using Containerd.Services.Images.V1;
using Containerd.Shim.Wasm;
using Containerd.Testing;
using Grpc.Core;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// One private containerd for the precompile tests, whose shims get a cache folder and a compile log of this run:
/// the Wasmtime engine appends a line to the log each time it really compiles a module, which is how the tests tell
/// a compile from a cache hit. The environment dictionary stays mutable so a test can restart containerd with
/// another engine configuration.
/// </summary>
public sealed class PrecompileFixture : IAsyncLifetime
{
    /// <summary>The engine's name in the precompiled labels.</summary>
    public const string Engine = "wasmtime";

    private readonly string _dir = Directory.CreateTempSubdirectory("precompile-").FullName;

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    /// <summary>containerd's environment, which its shims inherit; change it, then <see cref="ContainerdFixture.RestartAsync"/>.</summary>
    public Dictionary<string, string> Environment { get; } = [];

    /// <summary>A folder of this fixture, removed with it.</summary>
    public string WorkDir => _dir;

    /// <summary>The shims' cache folder for rootfs modules.</summary>
    public string CacheDir => Path.Combine(_dir, "cache");

    /// <summary>The compile log.</summary>
    public string CompileLog => Path.Combine(_dir, "compiles.log");

    public async Task InitializeAsync()
    {
        Environment["CONTAINERD_SHIM_WASMTIME_CACHE"] = CacheDir;
        Environment["CONTAINERD_SHIM_WASMTIME_COMPILE_LOG"] = CompileLog;
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = await ShimBinary.DirAsync(),
            Environment = Environment,
        });
    }

    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>How many times the engine compiled the module with <paramref name="moduleDigest"/>.</summary>
    public int Compilations(string moduleDigest) =>
        File.Exists(CompileLog) ? File.ReadLines(CompileLog).Count(l => l.Contains($" {moduleDigest} ", StringComparison.Ordinal)) : 0;

    /// <summary>The compile log's lines for the module, for failure messages.</summary>
    public string CompileLines(string moduleDigest) =>
        File.Exists(CompileLog) ? string.Join('\n', File.ReadLines(CompileLog).Where(l => l.Contains(moduleDigest, StringComparison.Ordinal))) : "(no compile log)";
}

/// <summary>
/// Compiled modules kept between containers: wasm layers in containerd's content store under runwasi's labels, rootfs
/// modules in the cache folder. Every case builds a module of its own (the demo plus a custom section naming the
/// case), so cases never see each other's cache entries. containerd 1.6.20, the default line here, refuses to import
/// wasm-layer images: there those cases assert exactly that and stop; the rootfs cases run on every line.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Tier", "Smoke")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PrecompileTests(PrecompileFixture fx, ITestOutputHelper output) : IClassFixture<PrecompileFixture>
{
    private const string LabelPrefix = "runwasi.io/precompiled/" + PrecompileFixture.Engine + "/";

    [Fact]
    public async Task Wasm_layer_image_is_compiled_once_then_runs_from_the_labelled_compiled_blob()
    {
        var module = await UniqueModuleAsync("layer-once");
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }

        var first = await RunAsync(image.Name, module.Title);
        Assert.Equal(1, fx.Compilations(module.Digest));
        var second = await RunAsync(image.Name, module.Title);

        Assert.Equal("hello\n", first.Stdout);
        Assert.Equal("hello\n", second.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 1, fx.CompileLines(module.Digest));

        using var client = Client();
        var (label, compiled) = await CompiledLabelAsync(client, module.Digest);
        var layer = await InfoAsync(client, module.Digest);
        Assert.Equal(compiled, layer.Labels[$"containerd.io/gc.ref.content.precompile.{PrecompileFixture.Engine}.{label[LabelPrefix.Length..]}"]);
        var blob = await InfoAsync(client, compiled);
        Assert.Equal(module.Digest, blob.Labels[label + "/original"]);
        Assert.Equal(compiled, Sha256(await client.Content.ReadBlobAsync(compiled)));

        var record = (await client.Images.GetAsync(new GetImageRequest { Name = image.Name })).Image;
        Assert.Equal("true", record.Labels[label]);
        var target = await InfoAsync(client, record.Target.Digest);
        Assert.Equal("true", target.Labels[label]);
        Assert.Contains(target.Labels, l => l.Key.StartsWith("containerd.io/gc.ref.content.precompile.", StringComparison.Ordinal) && l.Value == compiled);

        // What an operator sees.
        var content = await fx.Containerd.RunCtrAsync("content", "ls");
        Assert.Contains($"{label}={compiled}", content);
        var images = await fx.Containerd.RunCtrAsync("images", "ls");
        Assert.Contains($"{label}=true", images);
    }

    [Fact]
    public async Task Wasm_artifact_is_compiled_once_too()
    {
        var module = await UniqueModuleAsync("artifact");
        if (await ImportAsync(module, KnownImages.WasmArtifact(module.Path, $"localhost/precompile/{module.Tag}:latest")) is not { } image)
        {
            return;
        }

        // ctr run refuses artifacts (it cannot read their config), so the container record is written here.
        var first = await RunThroughApiAsync(image.Name, module.Title);
        var second = await RunThroughApiAsync(image.Name, module.Title);

        Assert.Equal("hello\n", first.Stdout);
        Assert.Equal("hello\n", second.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 1, fx.CompileLines(module.Digest));
        using var client = Client();
        await CompiledLabelAsync(client, module.Digest);
    }

    [Fact]
    public async Task Deleted_compiled_blob_is_recompiled_and_replaced()
    {
        var module = await UniqueModuleAsync("deleted");
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }
        await RunAsync(image.Name, module.Title);
        using var client = Client();
        var (label, compiled) = await CompiledLabelAsync(client, module.Digest);

        await client.Content.DeleteAsync(new DeleteContentRequest { Digest = compiled });
        var result = await RunAsync(image.Name, module.Title);

        Assert.Equal("hello\n", result.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 2, fx.CompileLines(module.Digest));
        Assert.Contains("is gone from the content store", fx.CompileLines(module.Digest));
        var (_, replaced) = await CompiledLabelAsync(client, module.Digest, label);
        Assert.Equal(replaced, Sha256(await client.Content.ReadBlobAsync(replaced)));
        await RunAsync(image.Name, module.Title);
        Assert.Equal(2, fx.Compilations(module.Digest));
    }

    [Fact]
    public async Task Corrupted_and_truncated_compiled_blobs_are_detected_recompiled_and_replaced()
    {
        var module = await UniqueModuleAsync("corrupt");
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }
        await RunAsync(image.Name, module.Title);
        using var client = Client();
        var (label, compiled) = await CompiledLabelAsync(client, module.Digest);

        // A digest cannot be overwritten through the API, so the bytes are changed where containerd keeps them.
        var file = BlobFile(compiled);
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(file, bytes);
        var afterFlip = await RunAsync(image.Name, module.Title);
        var (_, repaired) = await CompiledLabelAsync(client, module.Digest, label);
        Assert.Equal(repaired, Sha256(await client.Content.ReadBlobAsync(repaired)));

        await File.WriteAllBytesAsync(BlobFile(repaired), bytes.AsSpan(0, bytes.Length / 3).ToArray());
        var afterTruncation = await RunAsync(image.Name, module.Title);
        var (_, again) = await CompiledLabelAsync(client, module.Digest, label);
        await RunAsync(image.Name, module.Title);

        Assert.Equal("hello\n", afterFlip.Stdout);
        Assert.Equal("hello\n", afterTruncation.Stdout);
        Assert.Equal(again, Sha256(await client.Content.ReadBlobAsync(again)));
        var lines = fx.CompileLines(module.Digest);
        Assert.True(fx.Compilations(module.Digest) == 3, lines);
        Assert.Equal(2, lines.Split('\n').Count(l => l.Contains("is corrupt", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Label_pointing_at_a_blob_that_is_no_compiled_module_is_replaced_and_that_blob_left_alone()
    {
        var module = await UniqueModuleAsync("foreign");
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }
        await RunAsync(image.Name, module.Title);
        using var client = Client();
        var (label, _) = await CompiledLabelAsync(client, module.Digest);
        // A sound blob (its digest matches) that Wasmtime must refuse: someone else's content under our label.
        var foreign = Sha256(await client.Content.ReadBlobAsync(module.Digest));
        await client.Content.UpdateLabelsAsync(module.Digest, new Dictionary<string, string> { [label] = foreign });

        var result = await RunAsync(image.Name, module.Title);

        Assert.Equal("hello\n", result.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 2, fx.CompileLines(module.Digest));
        Assert.Contains("wasmtime refused", fx.CompileLines(module.Digest));
        var (_, replaced) = await CompiledLabelAsync(client, module.Digest, label);
        Assert.NotEqual(foreign, replaced);
        Assert.Equal(module.Digest, (await InfoAsync(client, module.Digest)).Digest);
    }

    [Fact]
    public async Task Another_engine_configuration_never_loads_the_artifact_and_compiles_its_own()
    {
        var module = await UniqueModuleAsync("config");
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }
        await RunAsync(image.Name, module.Title);
        using var client = Client();
        var (speedLabel, speedBlob) = await CompiledLabelAsync(client, module.Digest);

        string noneLabel, noneBlob;
        fx.Environment["CONTAINERD_SHIM_WASMTIME_OPT_LEVEL"] = "none";
        try
        {
            await fx.Containerd.RestartAsync();
            var other = await RunAsync(image.Name, module.Title);
            Assert.Equal("hello\n", other.Stdout);
            Assert.True(fx.Compilations(module.Digest) == 2, fx.CompileLines(module.Digest));
            var labels = (await InfoAsync(client, module.Digest)).Labels.Where(l => l.Key.StartsWith(LabelPrefix, StringComparison.Ordinal)).ToList();
            Assert.Equal(2, labels.Count);
            (noneLabel, noneBlob) = (labels.Single(l => l.Key != speedLabel).Key, labels.Single(l => l.Key != speedLabel).Value);
        }
        finally
        {
            fx.Environment.Remove("CONTAINERD_SHIM_WASMTIME_OPT_LEVEL");
            await fx.Containerd.RestartAsync();
        }

        // Back on the first configuration: its own artifact is still there and still used.
        var back = await RunAsync(image.Name, module.Title);
        Assert.Equal("hello\n", back.Stdout);
        Assert.Equal(2, fx.Compilations(module.Digest));
        Assert.NotEqual(speedBlob, noneBlob);
        Assert.Equal(speedBlob, (await InfoAsync(client, module.Digest)).Labels[speedLabel]);
        Assert.Equal(noneBlob, (await InfoAsync(client, module.Digest)).Labels[noneLabel]);
    }

    [Fact]
    public async Task Removing_the_image_lets_garbage_collection_take_the_compiled_blob()
    {
        // Not the demo: the custom section that sets the demo copies apart is not compiled, so they all share one
        // compiled blob, which another case's image would keep alive.
        var module = await UniqueModuleAsync("gc", TinyModuleWithGlobal);
        if (await ImportWasmLayerImageAsync(module) is not { } image)
        {
            return;
        }
        await RunAsync(image.Name, module.Title);
        using var client = Client();
        var (_, compiled) = await CompiledLabelAsync(client, module.Digest);

        // The lease the blob was written under is gone: a GC pass now must keep the blob for the image's sake.
        await fx.Containerd.RunCtrAsync("images", "tag", image.Name, image.Name + "-gc-probe");
        await fx.Containerd.RunCtrAsync("images", "rm", "--sync", image.Name + "-gc-probe");
        Assert.Equal(compiled, (await InfoAsync(client, compiled)).Digest);

        await fx.Containerd.RunCtrAsync("images", "rm", "--sync", image.Name);

        if (await ExistsAsync(client, compiled))
        {
            // What still holds it, for the failure message.
            var leases = await fx.Containerd.CtrAsync("leases", "ls");
            var content = await fx.Containerd.CtrAsync("content", "ls");
            var snapshots = await fx.Containerd.CtrAsync("snapshots", "ls");
            Assert.Fail($"compiled blob {compiled} survived the image.\nleases:\n{leases.Stdout}\ncontent:\n{content.Stdout}\nsnapshots:\n{snapshots.Stdout}");
        }
        var gone = await Assert.ThrowsAsync<RpcException>(() => InfoAsync(client, compiled));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        var layerGone = await Assert.ThrowsAsync<RpcException>(() => InfoAsync(client, module.Digest));
        Assert.Equal(StatusCode.NotFound, layerGone.StatusCode);
    }

    [Fact]
    public async Task Plain_image_module_is_compiled_once_then_loaded_from_the_cache_folder()
    {
        var module = await UniqueModuleAsync("rootfs");
        var image = await ImportAsync(module, KnownImages.Demo(module.Path, $"localhost/precompile/{module.Tag}:latest"), platform: false);

        var first = await RunAsync(image!.Name, "/wasi-demo-app.wasm");
        var second = await RunAsync(image.Name, "/wasi-demo-app.wasm");

        Assert.Equal("hello\n", first.Stdout);
        Assert.Equal("hello\n", second.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 1, fx.CompileLines(module.Digest));
        Assert.Single(CacheEntries(module.Digest));
    }

    [Fact]
    public async Task Corrupted_cache_file_is_recompiled_and_replaced()
    {
        var module = await UniqueModuleAsync("rootfs-corrupt");
        var image = await ImportAsync(module, KnownImages.Demo(module.Path, $"localhost/precompile/{module.Tag}:latest"), platform: false);
        await RunAsync(image!.Name, "/wasi-demo-app.wasm");
        var entry = Assert.Single(CacheEntries(module.Digest));
        var bytes = await File.ReadAllBytesAsync(entry);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(entry, bytes);

        var result = await RunAsync(image.Name, "/wasi-demo-app.wasm");
        await RunAsync(image.Name, "/wasi-demo-app.wasm");

        Assert.Equal("hello\n", result.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 2, fx.CompileLines(module.Digest));
        Assert.Contains("is corrupt", fx.CompileLines(module.Digest));
        var replaced = Assert.Single(CacheEntries(module.Digest));
        Assert.EndsWith(Sha256(await File.ReadAllBytesAsync(replaced))[7..], replaced);
    }

    [Theory]
    [InlineData("owner")]
    [InlineData("mode")]
    public async Task Cache_folder_that_root_alone_cannot_write_is_not_used_and_every_start_compiles(string flaw)
    {
        var module = await UniqueModuleAsync($"rootfs-untrusted-{flaw}");
        var image = await ImportAsync(module, KnownImages.Demo(module.Path, $"localhost/precompile/{module.Tag}:latest"), platform: false);
        Directory.CreateDirectory(fx.CacheDir);
        try
        {
            // What a local user who got the folder (or its mode) could do: plant native code for every later container.
            if (flaw == "owner")
            {
                var chown = await ProcessRunner.RunAsync("chown", ["65534:65534", fx.CacheDir]);
                Assert.True(chown.ExitCode == 0, chown.ToString());
            }
            else
            {
                File.SetUnixFileMode(fx.CacheDir, (UnixFileMode)0b111_111_111);
            }

            var first = await RunAsync(image!.Name, "/wasi-demo-app.wasm");
            var second = await RunAsync(image.Name, "/wasi-demo-app.wasm");

            Assert.Equal("hello\n", first.Stdout);
            Assert.Equal("hello\n", second.Stdout);
            Assert.True(fx.Compilations(module.Digest) == 2, fx.CompileLines(module.Digest));
            Assert.Contains("cache refused", fx.CompileLines(module.Digest));
            Assert.Contains("level=error", first.Stderr);
            Assert.Contains($"CONTAINERD_SHIM_WASMTIME_CACHE={fx.CacheDir} is not used", first.Stderr);
            Assert.Contains(flaw == "owner" ? "owned by uid 65534" : "mode 0777", first.Stderr);
            Assert.Empty(CacheEntries(module.Digest));
        }
        finally
        {
            await ProcessRunner.RunAsync("chown", ["0:0", fx.CacheDir]);
            File.SetUnixFileMode(fx.CacheDir, (UnixFileMode)0b111_000_000);
        }
    }

    [Fact]
    public async Task Cache_folder_the_shim_creates_is_roots_0700_and_its_entries_0600()
    {
        var module = await UniqueModuleAsync("rootfs-fresh-folder");
        var image = await ImportAsync(module, KnownImages.Demo(module.Path, $"localhost/precompile/{module.Tag}:latest"), platform: false);
        if (Directory.Exists(fx.CacheDir))
        {
            Directory.Delete(fx.CacheDir, recursive: true);
        }

        await RunAsync(image!.Name, "/wasi-demo-app.wasm");
        var second = await RunAsync(image.Name, "/wasi-demo-app.wasm");

        Assert.Equal("hello\n", second.Stdout);
        Assert.True(fx.Compilations(module.Digest) == 1, fx.CompileLines(module.Digest));
        var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(owner, File.GetUnixFileMode(fx.CacheDir));
        var entry = Assert.Single(CacheEntries(module.Digest));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(entry));
        for (var dir = Path.GetDirectoryName(entry)!; dir != fx.CacheDir; dir = Path.GetDirectoryName(dir)!)
        {
            Assert.Equal(owner, File.GetUnixFileMode(dir));
        }
    }

    private ContainerdClient Client() => new(fx.Containerd.Address, fx.Containerd.Namespace);

    private static async Task<bool> ExistsAsync(ContainerdClient client, string digest)
    {
        try
        {
            await InfoAsync(client, digest);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }

    private static async Task<Info> InfoAsync(ContainerdClient client, string digest) =>
        (await client.Content.InfoAsync(new InfoRequest { Digest = digest })).Info;

    // The single runwasi.io/precompiled label on the layer (or the one named), and the blob it points at.
    private static async Task<(string Label, string Blob)> CompiledLabelAsync(ContainerdClient client, string layer, string? label = null)
    {
        var labels = (await InfoAsync(client, layer)).Labels;
        var found = labels.Where(l => label is null ? l.Key.StartsWith(LabelPrefix, StringComparison.Ordinal) : l.Key == label).ToList();
        Assert.True(found.Count == 1, $"layer {layer} labels: {string.Join(", ", labels.Select(l => $"{l.Key}={l.Value}"))}");
        Assert.StartsWith("sha256:", found[0].Value);
        return (found[0].Key, found[0].Value);
    }

    private string BlobFile(string digest) =>
        Path.Combine(fx.Containerd.RootDir, "io.containerd.content.v1.content", "blobs", "sha256", digest["sha256:".Length..]);

    private IEnumerable<string> CacheEntries(string moduleDigest) =>
        Directory.Exists(fx.CacheDir)
            ? Directory.EnumerateFiles(fx.CacheDir, moduleDigest["sha256:".Length..] + ".*", SearchOption.AllDirectories).ToList()
            : [];

    private async Task<ProcessResult> RunAsync(string image, string module)
    {
        var result = await fx.Containerd.CtrAsync(
            ["run", "--rm", "--runtime", WasmShimFixture.Runtime, image, WasmShimFixture.NewId("pc"), module, "echo", "hello"],
            TimeSpan.FromSeconds(90));
        Assert.True(result.Succeeded, $"{result}\n--- containerd log ---\n{fx.Containerd.LogTail()}");
        return result;
    }

    private async Task<ProcessResult> RunThroughApiAsync(string image, string module)
    {
        var id = WasmShimFixture.NewId("pc-api");
        using var client = Client();
        await client.Containers.CreateAsync(new CreateContainerRequest
        {
            Container = new Container
            {
                Id = id,
                Image = image,
                Runtime = new Container.Types.Runtime { Name = WasmShimFixture.Runtime },
                Spec = RuntimeSpecAny.Spec(TestModules.ConfigJson([module, "echo", "hello"], [])),
            },
        });
        try
        {
            var result = await fx.Containerd.CtrAsync(["task", "start", id], TimeSpan.FromSeconds(90));
            Assert.True(result.Succeeded, result.ToString());
            return result;
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("containers", "delete", id);
        }
    }

    private Task<TestImage?> ImportWasmLayerImageAsync(UniqueModule module) =>
        ImportAsync(module, KnownImages.WasmLayer(module.Path, $"localhost/precompile/{module.Tag}:latest"));

    // Null on containerd 1.6, after checking that it refuses the wasm image as documented.
    private async Task<TestImage?> ImportAsync(UniqueModule module, ImageDefinition definition, bool platform = true)
    {
        var image = TestImages.Build($"precompile-{module.Tag}", definition);
        if (platform && fx.Containerd.Version == "1.6")
        {
            var refused = await Assert.ThrowsAsync<CtrCommandException>(() => fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true));
            File.Delete(image.TarPath);
            output.WriteLine($"{fx.Containerd.BinaryVersion} refuses wasm-layer images, as documented (1.6.25/1.7.7 and later import them); "
                + $"the content-store cache is covered on 1.7 and 2.x. ctr said: {refused.Message.Split('\n')[0]}");
            return null;
        }
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: platform);
        // The tarball is unique to this run (so is the module): once imported it is only clutter.
        File.Delete(image.TarPath);
        return image;
    }

    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    // The demo module with a custom section naming the case: its own digest, so its own cache entries.
    private async Task<UniqueModule> UniqueModuleAsync(string tag, byte[]? module = null)
    {
        var demo = module ?? await File.ReadAllBytesAsync(await TestImages.EnsureDemoWasmAsync());
        var name = "runwasi-dotnet.precompile-test"u8.ToArray();
        var payload = System.Text.Encoding.UTF8.GetBytes($"{tag} {Guid.NewGuid():N}");
        var body = new List<byte> { (byte)name.Length };
        body.AddRange(name);
        body.AddRange(payload);
        // Section 0 (custom) with a one-byte LEB128 size: the body stays well under 128 bytes.
        var bytes = demo.Concat(new byte[] { 0, (byte)body.Count }).Concat(body).ToArray();
        var path = Path.Combine(fx.WorkDir, $"precompile-{tag}-{Guid.NewGuid():N}.wasm");
        await File.WriteAllBytesAsync(path, bytes);
        var fullTag = $"{tag}-{Guid.NewGuid().ToString("N")[..8]}";
        return new UniqueModule(fullTag, path, Sha256(bytes), KnownImages.ModuleTitle($"localhost/precompile/{fullTag}:latest"));
    }

    // (module (global (export "g") i32 (i32.const 42)) (func (export "_start"))): does nothing, compiles to code of
    // its own.
    private static readonly byte[] TinyModuleWithGlobal =
    [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
        0x03, 0x02, 0x01, 0x00, // function 0 has type 0
        0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x2a, 0x0b, // global i32 = 42
        0x07, 0x0e, 0x02, 0x06, (byte)'_', (byte)'s', (byte)'t', (byte)'a', (byte)'r', (byte)'t', 0x00, 0x00, 0x01, (byte)'g', 0x03, 0x00,
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // body: no locals, end
    ];

    private sealed record UniqueModule(string Tag, string Path, string Digest, string Title);
}
