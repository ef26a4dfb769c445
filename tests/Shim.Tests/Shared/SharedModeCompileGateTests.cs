using System.Text;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// The daemon's compile gate (<c>CONTAINERD_WASMTIMED_COMPILE_WORKERS</c>): with one worker, a tenant's module that
/// takes seconds to compile holds the only slot, a container of a program already compiled starts and finishes
/// meanwhile, and a second compile waits for the slot instead of running beside the first. A daemon of its own.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SharedModeCompileGateTests(SharedModeCompileGateTests.Fixture fx, ITestOutputHelper output)
    : IClassFixture<SharedModeCompileGateTests.Fixture>
{
    private const string Demo = "/wasi-demo-app.wasm";

    /// <summary>A daemon with a single compile worker.</summary>
    public sealed class Fixture : SharedModeFixture
    {
        /// <inheritdoc/>
        protected override IReadOnlyDictionary<string, string> DaemonEnvironment { get; } = new Dictionary<string, string>
        {
            ["CONTAINERD_WASMTIMED_COMPILE_WORKERS"] = "1",
        };
    }

    [Fact]
    public async Task A_slow_compile_holds_the_only_slot_while_a_compiled_program_runs_and_another_compile_waits()
    {
        // Warm: the demo is compiled (and kept in memory) before the slow compile takes the slot.
        var warm = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("warm"), [Demo, "echo", "warm"]);
        Assert.True(warm.Succeeded, warm + fx.DaemonLog());
        Assert.Contains("compile workers: 1 (serial compilation)", fx.DaemonLog());

        var salt = Random.Shared.Next(1, 1 << 13);
        var slow = SlowCompileModule.Build(functions: 400, blocksPerFunction: 2500, salt);
        var tiny = $"(module (func (export \"_start\") (drop (i32.const {salt}))))";
        var image = TestImages.Build("compile-gate", new ImageDefinition
        {
            Name = "localhost/runwasi-dotnet/compile-gate:latest",
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = ["/slow.wasm"] },
            Layers = [new FilesystemLayer([LayerEntry.Bytes("slow.wasm", slow), LayerEntry.Bytes("tiny.wat", Encoding.UTF8.GetBytes(tiny))])],
        });
        try
        {
            await fx.Containerd.ImportAsync(image.TarPath);
        }
        finally
        {
            File.Delete(image.TarPath);
        }

        var slowId = SharedModeTests.NewId("slow");
        var tinyId = SharedModeTests.NewId("tiny");
        var promptId = SharedModeTests.NewId("prompt");
        Task<ProcessResult>? slowRun = null;
        Task<ProcessResult>? tinyRun = null;
        try
        {
            slowRun = fx.RunAsync(image.Name, slowId, ["/slow.wasm"], timeout: TimeSpan.FromMinutes(5));
            await SharedModeTests.WaitUntilAsync(() => Task.FromResult(LineOf("compiling ", "slow.wasm") >= 0),
                "the slow module's compile to start", TimeSpan.FromMinutes(2));

            tinyRun = fx.RunAsync(image.Name, tinyId, ["/tiny.wat"], timeout: TimeSpan.FromMinutes(5));
            await SharedModeTests.WaitUntilAsync(() => Task.FromResult(LineOf("waits for a compile slot", "tiny.wat") >= 0),
                "the second compile to wait for the slot", TimeSpan.FromMinutes(2));

            // The compiled program does not queue behind the compile: it runs to its end while the slot is held.
            var prompt = await fx.RunAsync(SharedModeFixture.TestImageName, promptId, [Demo, "echo", "prompt"]);
            Assert.True(prompt.Succeeded, prompt + fx.DaemonLog());
            Assert.Equal("prompt\n", prompt.Stdout);
            Assert.False(slowRun.IsCompleted, $"the slow module finished before the compiled one: {fx.DaemonLog()}");
            Assert.Equal(-1, LineOf("compiled ", "slow.wasm"));

            var slowResult = await slowRun;
            var tinyResult = await tinyRun;
            Assert.True(slowResult.Succeeded, slowResult + fx.DaemonLog());
            Assert.True(tinyResult.Succeeded, tinyResult + fx.DaemonLog());
            output.WriteLine(string.Join('\n', LogLines().Where(l => l.Contains("slot") || l.Contains("compil"))));
            // One slot: the tiny module compiled only after the slow one had.
            var slowDone = LineOf("compiled ", "slow.wasm");
            var tinyStart = LineOf("compiling ", "tiny.wat");
            Assert.True(slowDone >= 0 && tinyStart > slowDone, fx.DaemonLog());
        }
        finally
        {
            foreach (var id in new[] { slowId, tinyId, promptId })
            {
                await fx.Containerd.CtrAsync("task", "delete", "--force", id);
                await fx.Containerd.CtrAsync("container", "delete", id);
            }
            foreach (var run in new[] { slowRun, tinyRun })
            {
                if (run is not null)
                {
                    await run;
                }
            }
        }
    }

    /// <summary>The first line of the daemon's whole log holding both texts, or -1.</summary>
    private int LineOf(string what, string name) => LogLines().FindIndex(l => l.Contains(what, StringComparison.Ordinal) && l.Contains(name, StringComparison.Ordinal));

    private List<string> LogLines()
    {
        using var stream = new FileStream(fx.DaemonLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return [.. new StreamReader(stream).ReadToEnd().Split('\n')];
    }
}
