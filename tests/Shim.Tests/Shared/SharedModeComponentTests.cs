using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// WASI 0.2 command components in the shared-mode daemon: the same hello component as <see cref="Shim.Tests.ComponentTests"/>
/// runs in the daemon's engine with args, env and exit codes, a second container compiles nothing, and a component
/// that is neither a command nor a proxy fails Create.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeComponentTests(SharedModeFixture fx)
{
    private const string Image = "localhost/runwasi-dotnet/shared-component-tests:latest";
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Command_component_runs_in_the_daemon_and_a_second_container_compiles_nothing()
    {
        await ImportAsync();

        var first = await fx.RunAsync(Image, NewId("comp1"), ["/hello.wasm", "shared", "env=GREETING"], ["--env", "GREETING=daemon"], RunTimeout);
        Assert.True(first.Succeeded, first + fx.DaemonLog());
        var before = (await fx.StatusAsync()).Compilations;
        var second = await fx.RunAsync(Image, NewId("comp2"), ["/hello.wasm", "exit=1"], timeout: RunTimeout);
        var after = (await fx.StatusAsync()).Compilations;

        Assert.Contains("""args=["/hello.wasm","shared","env=GREETING"]""", first.Stdout);
        Assert.Contains("GREETING=daemon\n", first.Stdout);
        Assert.True(second.ExitCode == 1, second + fx.DaemonLog());
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Neither_command_nor_proxy_component_fails_create()
    {
        await ImportAsync();

        var id = NewId("neither");
        ProcessResult result;
        try
        {
            result = await fx.RunAsync(Image, id, ["/neither.wasm"], timeout: RunTimeout);
        }
        finally
        {
            // ctr run leaves the container record when task creation fails.
            await fx.Containerd.CtrAsync("containers", "delete", id);
        }

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("it exports: runwasi-dotnet:neither/api@0.1.0, answer", result.Stderr);
    }

    private async Task ImportAsync()
    {
        var hello = await TestImages.EnsureComponentAsync("hello");
        var neither = await TestImages.EnsureComponentAsync("neither");
        var image = TestImages.Build("shared-component-tests", new ImageDefinition
        {
            Name = Image,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = ["/hello.wasm"] },
            Layers =
            [
                new FilesystemLayer(
                [
                    LayerEntry.File("hello.wasm", hello, Modes.Executable),
                    LayerEntry.File("neither.wasm", neither, Modes.Executable),
                ]),
            ],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
