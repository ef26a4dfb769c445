using System.Security.Cryptography;
using Containerd.Shim.Wasm;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// WASI 0.2 components through a private containerd: the hello command component (tools/components/hello, built by
/// <c>make components</c>) from the rootfs of a plain image and from a wasm layer, with args, env, preopens, stdio and
/// exit codes as preview 1 modules get them, compiled once and then loaded from the cache; and a component that is
/// neither a command nor an HTTP proxy, refused at Create. The fixture's compile log tells a compile from a cache hit.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ComponentTests(PrecompileFixture fx, ITestOutputHelper output) : IClassFixture<PrecompileFixture>
{
    private const string RootfsImage = "localhost/runwasi-dotnet/component-tests:latest";
    private const string Hello = "/hello.wasm";

    // A 12 MB component compiles for seconds on an idle machine, and much longer on a loaded one.
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Command_component_from_the_rootfs_gets_args_env_a_file_and_exit_codes_and_compiles_once()
    {
        var (image, digest) = await ImportRootfsImageAsync();

        var first = await RunAsync(image, [Hello, "a b", "env=GREETING", "cat=/data/greeting.txt"], ["--env", "GREETING=hi there"]);
        var failing = await RunAsync(image, [Hello, "exit=1"]);
        var third = await RunAsync(image, [Hello, "again"]);

        Assert.True(first.Succeeded, first.ToString());
        Assert.Contains("""hello from a component: args=["/hello.wasm","a b","env=GREETING","cat=/data/greeting.txt"]""", first.Stdout);
        Assert.Contains("GREETING=hi there\n", first.Stdout);
        Assert.Contains("/data/greeting.txt: hello from a file\n", first.Stdout);
        Assert.Equal(1, failing.ExitCode);
        Assert.True(third.Succeeded, third.ToString());
        Assert.Contains("""args=["/hello.wasm","again"]""", third.Stdout);
        // Three containers, one compile: the later ones load the artifact from the cache folder.
        Assert.True(Compilations(digest, Hello) == 1, fx.CompileLines(digest));
        Assert.Single(Directory.EnumerateFiles(fx.CacheDir, digest["sha256:".Length..] + ".*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Exit_with_code_gives_any_status()
    {
        var (image, _) = await ImportRootfsImageAsync();

        var result = await RunAsync(image, [Hello, "exit=42"]);

        Assert.True(result.ExitCode == 42, result.ToString());
    }

    [Fact]
    public async Task Preopen_annotation_decides_what_a_component_sees()
    {
        var (image, _) = await ImportRootfsImageAsync();

        var dataOnly = await RunAsync(image, [Hello, "cat=/data/greeting.txt"], ["--annotation", $"{WasiPreopens.Annotation}=/data:ro"]);
        var none = await RunAsync(image, [Hello, "cat=/data/greeting.txt"], ["--annotation", $"{WasiPreopens.Annotation}=none"]);

        Assert.True(dataOnly.Succeeded, dataOnly.ToString());
        Assert.Contains("/data/greeting.txt: hello from a file\n", dataOnly.Stdout);
        Assert.NotEqual(0, none.ExitCode);
        Assert.Contains("cat /data/greeting.txt: Error: no preopened directory holds /data/greeting.txt", none.Stderr);
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Neither_command_nor_proxy_component_fails_create_naming_its_exports()
    {
        var (result, tasks, id) = await RunRefusedComponentAsync("neither");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("/neither.wasm", result.Stderr);
        Assert.Contains("neither a wasi:cli/command (no wasi:cli/run export) nor a wasi:http/proxy (no wasi:http/incoming-handler export)", result.Stderr);
        Assert.Contains("it exports: runwasi-dotnet:neither/api@0.1.0, answer", result.Stderr);
        // Refused at Create: no task is left behind.
        Assert.DoesNotContain(id, tasks.Stdout);
    }

    [Fact]
    public async Task Command_component_with_an_import_no_host_has_fails_create()
    {
        var (result, tasks, id) = await RunRefusedComponentAsync("unlinkable");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("component cannot be linked with WASI 0.2", result.Stderr);
        Assert.Contains("runwasi-dotnet:missing/host@0.1.0", result.Stderr);
        Assert.DoesNotContain(id, tasks.Stdout);
    }

    // `ctr run` of test component <name> as the only file of an image, for components Create must refuse: ctr's
    // result, `ctr tasks ls` right after, and the container id (ctr run leaves the container record when task
    // creation fails; it is deleted here).
    private async Task<(ProcessResult Result, ProcessResult Tasks, string Id)> RunRefusedComponentAsync(string name)
    {
        var component = await TestImages.EnsureComponentAsync(name);
        var image = TestImages.Build($"component-{name}", new ImageDefinition
        {
            Name = $"localhost/runwasi-dotnet/component-{name}:latest",
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [$"/{name}.wasm"] },
            Layers = [new FilesystemLayer([LayerEntry.File($"{name}.wasm", component, Modes.Executable)])],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
        var id = WasmShimFixture.NewId(name);
        try
        {
            var result = await fx.Containerd.CtrAsync(["run", "--rm", "--runtime", WasmShimFixture.Runtime, image.Name, id, $"/{name}.wasm"], RunTimeout);
            return (result, await fx.Containerd.CtrAsync("tasks", "ls"), id);
        }
        finally
        {
            await fx.Containerd.CtrAsync("containers", "delete", id);
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Command_component_from_a_wasm_layer_runs_and_compiles_once_into_the_content_store()
    {
        var hello = await TestImages.EnsureComponentAsync("hello");
        var image = TestImages.Build("hello-component-oci", KnownImages.ComponentWasmLayer(hello));
        if (fx.Containerd.Version == "1.6")
        {
            var refused = await Assert.ThrowsAsync<CtrCommandException>(() => fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true));
            output.WriteLine($"{fx.Containerd.BinaryVersion} refuses wasm-layer images (1.6.25/1.7.7 and later import them); "
                + $"run with CONTAINERD_VERSION=1.7 or 2. ctr said: {refused.Message.Split('\n')[0]}");
            return;
        }
        await fx.Containerd.ImportAsync(image.TarPath, allPlatforms: true);
        var title = KnownImages.ModuleTitle(image.Name);
        var digest = Digest(hello);

        var first = await RunAsync(image.Name, [title, "from", "a", "layer", "env=GREETING"], ["--env", "GREETING=layered"]);
        var second = await RunAsync(image.Name, [title, "exit=1"]);

        Assert.True(first.Succeeded, first.ToString());
        Assert.Contains($$"""args=["{{title}}","from","a","layer","env=GREETING"]""", first.Stdout);
        Assert.Contains("GREETING=layered\n", first.Stdout);
        Assert.Equal(1, second.ExitCode);
        Assert.True(Compilations(digest, title) == 1, fx.CompileLines(digest));
        var content = await fx.Containerd.RunCtrAsync("content", "ls");
        Assert.Contains($"runwasi.io/precompiled/{PrecompileFixture.Engine}/", content);
    }

    private async Task<(string Image, string Digest)> ImportRootfsImageAsync()
    {
        var hello = await TestImages.EnsureComponentAsync("hello");
        var image = TestImages.Build("component-tests", new ImageDefinition
        {
            Name = RootfsImage,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [Hello] },
            Layers =
            [
                new FilesystemLayer(
                [
                    LayerEntry.File("hello.wasm", hello, Modes.Executable),
                    LayerEntry.Directory("data"),
                    LayerEntry.Bytes("data/greeting.txt", "hello from a file\n"u8.ToArray()),
                ]),
            ],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
        return (RootfsImage, Digest(hello));
    }

    private Task<ProcessResult> RunAsync(string image, IEnumerable<string> args, IEnumerable<string>? options = null) =>
        fx.Containerd.CtrAsync(
            new[] { "run", "--rm", "--runtime", WasmShimFixture.Runtime }.Concat(options ?? []).Concat([image, WasmShimFixture.NewId("comp")]).Concat(args),
            RunTimeout);

    // Compiles of this component under this name: the rootfs and the wasm-layer cases share the component's digest.
    private int Compilations(string digest, string name) =>
        File.Exists(fx.CompileLog)
            ? File.ReadLines(fx.CompileLog).Count(l => l.Contains($" {digest} ", StringComparison.Ordinal) && l.Contains($" {name} ", StringComparison.Ordinal))
            : 0;

    private static string Digest(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
