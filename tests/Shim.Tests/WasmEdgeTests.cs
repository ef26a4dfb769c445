using System.Diagnostics;
using System.Text.RegularExpressions;
using Containerd.Shim.WasmEdge;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// What is particular to the WasmEdge shim, end-to-end through containerd: the program's view (args, cwd), signals
/// reaching a guest in native code that never calls the host, the modules it refuses at Create, the Linux containers
/// it hands to runc from a binary whose interpreter may be a sysroot's, and which process loads libwasmedge.
/// </summary>
[Collection(WasmEdgeShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WasmEdgeTests(WasmEdgeShimFixture fx, ITestOutputHelper output)
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    public async Task Args_reach_the_program_after_its_name()
    {
        var result = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("we-args"), [Demo, "echo", "one", "two words", "three"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("one two words three\n", result.Stdout);
    }

    [Fact]
    public async Task Cwd_of_the_spec_is_the_programs_PWD()
    {
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, WasmShimFixture.NewId("we-cwd"), [fx.EnvModule], ["--cwd", "/bin"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains("PWD=/bin", result.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Exit_code_zero_and_nonzero_come_from_proc_exit()
    {
        var zero = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("we-exit0"), [Demo, "exit", "0"]);
        var three = await fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("we-exit3"), [Demo, "exit", "3"]);
        Assert.Equal(0, zero.ExitCode);
        Assert.Equal(3, three.ExitCode);
    }

    [Theory]
    [InlineData("SIGKILL", 137, "/loop.wasm")]
    [InlineData("SIGTERM", 143, "/loop.wasm")]
    [InlineData("SIGKILL", 137, Demo + " sleep 600")]
    [InlineData("SIGTERM", 143, Demo + " sleep 600")]
    public async Task Signal_ends_a_spinning_or_sleeping_guest_promptly(string signal, int status, string command)
    {
        var id = WasmShimFixture.NewId("we-sig");
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = fx.RunAsync(WasmShimFixture.TestImageName, id, command.Split(' '), ct: cts.Token);
        await fx.Containerd.WaitForRunningPidAsync(id, starter: run);
        // Let the guest get into its loop or sleep.
        await Task.Delay(500);
        var clock = Stopwatch.StartNew();
        await fx.Containerd.RunCtrAsync("task", "kill", "-s", signal, id);
        var result = await run;
        output.WriteLine($"{signal} to exit: {clock.ElapsedMilliseconds} ms");
        Assert.Equal(status, result.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"{signal} took {clock.Elapsed}");
    }

    [Theory]
    [InlineData("/trap.wat", "WasmEdge runs binary modules only; .wat needs wasmtime")]
    [InlineData(Demo + "#nosuch", "module does not export a function named \"nosuch\"")]
    [InlineData("/invalid.wasm", "invalid wasm module")]
    [InlineData("/missing.wasm", "no such file")]
    public async Task Module_it_cannot_run_fails_at_create_with_the_reason(string entrypoint, string reason)
    {
        var id = WasmShimFixture.NewId("we-bad");
        var result = await fx.RunAsync(WasmShimFixture.TestImageName, id, [entrypoint]);
        await fx.Containerd.CtrAsync("container", "delete", id);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(reason, result.Stderr);
        // Create failed: the program never started, so nothing of it is on stdout.
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Second_container_of_a_module_loads_the_cached_artifact_instead_of_compiling()
    {
        // A module no other case runs: its digest is in the compile log only through this test.
        var module = await Wat2Wasm.AssembleAsync("""(module (func (export "_start") nop))""");
        var digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(module));
        var image = TestImages.Build("wasmedge-cache", new ImageBuilder.ImageDefinition
        {
            Name = "localhost/runwasi-dotnet/wasmedge-cache:latest",
            Platform = ImageBuilder.Platform.LinuxAmd64,
            Layers = [new ImageBuilder.FilesystemLayer([ImageBuilder.LayerEntry.Bytes("nop.wasm", module)])],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
        var times = new List<long>();
        for (var i = 0; i < 2; i++)
        {
            var clock = Stopwatch.StartNew();
            var result = await fx.RunAsync(image.Name, WasmShimFixture.NewId("we-cache"), ["/nop.wasm"]);
            times.Add(clock.ElapsedMilliseconds);
            Assert.True(result.Succeeded, result.ToString());
        }
        output.WriteLine($"ctr run --rm: {times[0]} ms compiling, {times[1]} ms from the cache");
        var compiles = File.ReadAllLines(fx.CompileLog).Where(l => l.Contains(digest)).ToList();
        var line = Assert.Single(compiles);
        Assert.Contains("not cached", line);
    }

    [Fact]
    public async Task Linux_container_runs_with_runc_from_the_wasmedge_shim()
    {
        var result = await fx.RunAsync(fx.BusyboxImage, WasmShimFixture.NewId("we-runc"), ["sh", "-c", "echo from runc; exit 7"]);
        Assert.Equal(7, result.ExitCode);
        Assert.Equal("from runc\n", result.Stdout);
    }

    [Fact]
    public async Task Only_the_instance_process_loads_libwasmedge_and_it_is_the_shim_itself()
    {
        var id = WasmShimFixture.NewId("we-maps");
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = fx.RunAsync(fx.DemoImage, id, [Demo, "daemon"], ct: cts.Token);
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id, starter: run);
            var server = ParentOf(pid);
            Assert.Contains(File.ReadAllLines($"/proc/{pid}/maps"), l => l.Contains("libwasmedge.so"));
            Assert.DoesNotContain(File.ReadAllLines($"/proc/{server}/maps"), l => l.Contains("libwasmedge.so"));
            // The instance is the shim executable re-executed, not a loader running it.
            var shim = File.ReadAllText($"/proc/{server}/cmdline").Split('\0')[0];
            Assert.EndsWith(fx.ShimName, shim);
            Assert.EndsWith(fx.ShimName, File.ReadAllText($"/proc/{pid}/cmdline").Split('\0')[0]);
            Assert.Equal(new FileInfo($"/proc/{server}/exe").LinkTarget, new FileInfo($"/proc/{pid}/exe").LinkTarget);
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
            await run;
        }
    }

    [Fact]
    public async Task Version_names_wasmedge_and_its_release()
    {
        var result = await ProcessRunner.RunAsync(Path.Combine(await ShimBinary.DirAsync(), fx.ShimName), ["-v"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains($"Runtime: {WasmEdgeShimFixture.WasmEdgeRuntime}", result.Stdout);
        Assert.Contains($"(WasmEdge {WasmEdgeShim.LibraryVersion})", result.Stdout);
    }

    private static int ParentOf(int pid)
    {
        // stat: pid (comm) state ppid ...; comm may hold spaces, so count from the last ')'.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
    }
}

/// <summary>The WasmEdge shim's constants, checked without loading libwasmedge.</summary>
public sealed class WasmEdgeShimInfoTests
{
    [Fact]
    public void Library_version_is_the_one_the_sysroot_script_fetches()
    {
        var script = File.ReadAllText(Path.Combine(RepositoryLayout.HackDir, "fetch-wasmedge.sh"));
        var fetched = Regex.Match(script, @"WASMEDGE_VERSION:-([0-9.]+)\}").Groups[1].Value;
        Assert.Equal(WasmEdgeShim.LibraryVersion, fetched);
        Assert.StartsWith(WasmEdgeShim.ApiVersion + ".", fetched);
    }

    [Theory]
    [InlineData("0.14.1", true)]
    [InlineData("0.14.0", true)]
    [InlineData("0.14", true)]
    [InlineData("0.140.0", false)]
    [InlineData("0.15.0", false)]
    [InlineData("", false)]
    public void Any_0_14_library_is_accepted(string version, bool supported) =>
        Assert.Equal(supported, WasmEdgeShim.IsSupported(version));

    [Fact]
    public void Compatibility_hash_follows_the_library_version_and_the_architecture()
    {
        var description = WasmEdgeProgramCompiler.Describe("0.14.1", System.Runtime.InteropServices.Architecture.X64);
        Assert.Equal("wasmedge 0.14.1; x86_64; opt-level=O2; interruptible", description);
        var key = Containerd.Shim.Wasm.ArtifactKey.Describe(WasmEdgeProgramCompiler.Engine, description);
        Assert.Equal(16, key.CompatibilityHash.Length);
        Assert.NotEqual(key, Containerd.Shim.Wasm.ArtifactKey.Describe(WasmEdgeProgramCompiler.Engine,
            WasmEdgeProgramCompiler.Describe("0.14.2", System.Runtime.InteropServices.Architecture.X64)));
    }

    [Fact]
    public void Info_names_the_runtime_and_wasmedge()
    {
        Assert.Equal("io.containerd.wasmedge.v1", WasmEdgeShim.Info.RuntimeName);
        Assert.EndsWith($"(WasmEdge {WasmEdgeShim.LibraryVersion})", WasmEdgeShim.Info.Version);
    }
}
