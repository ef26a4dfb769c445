using System.Text.RegularExpressions;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Foundation.Tests;

/// <summary>
/// The built tarballs against a real private containerd (the release line CONTAINERD_VERSION selects): the regular
/// images import and run under runc; the wasm-layer image and the wasm artifact import where containerd allows it.
/// </summary>
/// <remarks>
/// What each containerd does with the two wasm forms (observed with Debian's 1.6.20, 1.7.24 and 2.1.9):
/// <list type="bullet">
/// <item>Without <c>--all-platforms</c> every version refuses both with "image might be filtered out": their platform
/// (wasip1/wasm) is not the host's, so ctr has nothing to unpack.</item>
/// <item>With <c>--all-platforms</c>, 1.6.20 fails both with "mismatched image rootfs and manifest layers" (it requires one
/// rootfs diff id per manifest layer; fixed upstream in 1.6.25 and 1.7.7); 1.7 and 2.x import both.</item>
/// <item><c>ctr images ls</c> lists the wasm-layer image as wasip1/wasm and the artifact with no platform ("-"), because
/// the artifact configuration is not an OCI image configuration.</item>
/// </list>
/// </remarks>
[Trait("Category", "Integration")]
public sealed class ImageBuilderImportTests : IClassFixture<ImageBuilderImportTests.Containerd>
{
    private const string RootfsMismatch = "mismatched image rootfs and manifest layers";
    private readonly ContainerdFixture _containerd;

    public ImageBuilderImportTests(Containerd containerd)
    {
        _containerd = containerd;
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task BusyboxImportsAndItsAppletsRunUnderRunc()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);

        var output = await _containerd.RunCtrAsync("run", "--rm", busybox.Name, Id("bb"), "sh", "-c", "echo $((6 * 7)) $(cat /etc/passwd | head -1)");

        Assert.Equal("42 root:x:0:0:root:/root:/bin/sh", output.Trim());
        Assert.Contains(busybox.Name, await _containerd.RunCtrAsync("images", "ls", "-q"));
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task PauseRunsUnderRuncUntilSigtermThenStops()
    {
        var pause = await TestImages.BuildPauseAsync();
        await _containerd.ImportAsync(pause.TarPath);
        var id = Id("pause");

        await _containerd.RunCtrAsync("run", "-d", pause.Name, id);
        try
        {
            Assert.Equal("RUNNING", await TaskStatusAsync(id));
            await Task.Delay(300);
            Assert.Equal("RUNNING", await TaskStatusAsync(id));

            await _containerd.RunCtrAsync("tasks", "kill", "--signal", "SIGTERM", id);

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (await TaskStatusAsync(id) != "STOPPED" && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
            Assert.Equal("STOPPED", await TaskStatusAsync(id));
        }
        finally
        {
            await _containerd.CtrAsync("tasks", "kill", "--signal", "SIGKILL", id);
            await _containerd.CtrAsync("tasks", "delete", "--force", id);
            await _containerd.CtrAsync("containers", "delete", id);
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task DemoImageImportsUnderRunwasisNameAndRuncCannotExecuteIt()
    {
        var demo = await TestImages.BuildDemoAsync();
        await _containerd.ImportAsync(demo.TarPath);

        Assert.Contains(KnownImages.DemoName, Lines(await _containerd.RunCtrAsync("images", "ls", "-q")));
        // Under runc the module is just a file without an ELF header: it takes a wasm shim to run it.
        var run = await _containerd.CtrAsync("run", "--rm", demo.Name, Id("demo"));
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("exec format error", run.Stdout + run.Stderr);
        await _containerd.CtrAsync("containers", "delete", Id("demo"));
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task WasmLayerImageImportsExceptOnContainerdBefore_1_6_25()
    {
        var image = await TestImages.BuildDemoWasmLayerAsync();

        var hostOnly = await _containerd.CtrAsync("images", "import", image.TarPath);
        var all = await _containerd.CtrAsync("images", "import", "--all-platforms", image.TarPath);

        Assert.NotEqual(0, hostOnly.ExitCode);
        Assert.Contains("filtered out", hostOnly.Stderr);
        if (RejectsLayersWithoutDiffIds())
        {
            Assert.NotEqual(0, all.ExitCode);
            Assert.Contains(RootfsMismatch, all.Stderr);
        }
        else
        {
            Assert.True(all.Succeeded, all.ToString());
            var listing = await _containerd.RunCtrAsync("images", "ls");
            Assert.Contains(Lines(listing), l => l.StartsWith(image.Name + " ", StringComparison.Ordinal) && l.Contains("wasip1/wasm"));
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task WasmArtifactImportsOnlyWhereTheWasmLayerImageDoes()
    {
        var artifact = await TestImages.BuildDemoArtifactAsync();

        var hostOnly = await _containerd.CtrAsync("images", "import", artifact.TarPath);
        var all = await _containerd.CtrAsync("images", "import", "--all-platforms", artifact.TarPath);

        Assert.NotEqual(0, hostOnly.ExitCode);
        Assert.Contains("filtered out", hostOnly.Stderr);
        if (RejectsLayersWithoutDiffIds())
        {
            Assert.NotEqual(0, all.ExitCode);
            Assert.Contains(RootfsMismatch, all.Stderr);
        }
        else
        {
            Assert.True(all.Succeeded, all.ToString());
            Assert.Contains(artifact.Name, Lines(await _containerd.RunCtrAsync("images", "ls", "-q")));
        }
    }

    /// <summary>One containerd for the class; xunit needs a fixture type with a single public constructor.</summary>
    public sealed class Containerd : ContainerdFixture
    {
        /// <summary>A containerd of the release line CONTAINERD_VERSION selects.</summary>
        public Containerd()
            : base(new ContainerdOptions())
        {
        }
    }

    /// <summary>containerd before 1.6.25 (and 1.7.0–1.7.6) requires one rootfs diff id per manifest layer.</summary>
    private bool RejectsLayersWithoutDiffIds()
    {
        var match = Regex.Match(_containerd.BinaryVersion, @"\b(\d+)\.(\d+)\.(\d+)");
        Assert.True(match.Success, $"no version in '{_containerd.BinaryVersion}'");
        var (major, minor, patch) = (int.Parse(match.Groups[1].Value), int.Parse(match.Groups[2].Value), int.Parse(match.Groups[3].Value));
        return major == 1 && ((minor == 6 && patch < 25) || (minor == 7 && patch < 7));
    }

    private async Task<string> TaskStatusAsync(string id)
    {
        foreach (var line in Lines(await _containerd.RunCtrAsync("tasks", "ls")))
        {
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 3 && fields[0] == id)
            {
                return fields[2];
            }
        }
        return "(no task)";
    }

    private static string Id(string prefix) => $"{prefix}-{Environment.ProcessId}";

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
