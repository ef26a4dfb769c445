using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// Shared mode with the pooling allocator on (<c>CONTAINERD_WASMTIMED_POOL</c>): the daemon reserves its slots up
/// front, and containers, kills, limits, updates and stdin behave as with the on-demand allocator; when every slot
/// is taken, a further container fails its create with a clear error and the others keep running.
/// </summary>
[Trait("Category", "Integration")]
public sealed class SharedModePoolTests(SharedModePoolTests.Fixture fx, ITestOutputHelper output) : IClassFixture<SharedModePoolTests.Fixture>
{
    private const string Demo = "/wasi-demo-app.wasm";

    /// <summary>A daemon with a pool of <see cref="Slots"/> instances of at most 128 MiB each.</summary>
    public sealed class Fixture : SharedModeFixture
    {
        /// <summary>Pool slots.</summary>
        public const int Slots = 8;

        /// <inheritdoc/>
        protected override IReadOnlyDictionary<string, string> DaemonEnvironment { get; } = new Dictionary<string, string>
        {
            ["CONTAINERD_WASMTIMED_POOL"] = Slots.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CONTAINERD_WASMTIMED_POOL_MEMORY_MIB"] = "128",
        };
    }

    [Fact]
    public async Task The_daemon_runs_with_the_pooling_allocator()
    {
        await SharedModeTests.WaitUntilAsync(() => Task.FromResult(fx.DaemonLog().Contains("wasmtime engine:")), "the engine line in the log");
        Assert.Contains("pooling allocator (8 slots of 128 MiB)", fx.DaemonLog());
    }

    [Fact]
    public async Task Echo_exit_code_and_trap_behave_as_without_the_pool()
    {
        var echo = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("pecho"), [Demo, "echo", "pooled"]);
        Assert.True(echo.Succeeded, echo + fx.DaemonLog());
        Assert.Equal("pooled\n", echo.Stdout);
        var exit = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("pexit"), [Demo, "exit", "42"]);
        Assert.Equal(42, exit.ExitCode);
        var trap = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("ptrap"), ["/trap.wat"]);
        Assert.Equal(134, trap.ExitCode);
    }

    [Fact]
    public async Task Metrics_limits_and_update_work_in_a_pool_slot()
    {
        await SharedModeResourceTests.MetricsAndUpdateAsync(fx, output);
    }

    [Fact]
    public async Task A_guest_blocked_reading_stdin_is_killed_promptly()
    {
        await SharedModeResourceTests.StdinKillAsync(fx, output);
    }

    [Fact]
    public async Task Slots_are_reused_and_a_full_pool_fails_one_create_cleanly()
    {
        // More containers one after the other than there are slots: each one's slot comes back when it is deleted.
        for (var i = 0; i < Fixture.Slots + 4; i++)
        {
            var run = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId($"reuse{i}"), [Demo, "echo", $"{i}"]);
            Assert.True(run.Succeeded, run + fx.DaemonLog());
        }

        var held = Enumerable.Range(0, Fixture.Slots).Select(i => SharedModeTests.NewId($"slot{i}")).ToList();
        var extra = SharedModeTests.NewId("noslot");
        try
        {
            foreach (var id in held)
            {
                await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "daemon");
            }
            var full = await fx.Containerd.CtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, extra, Demo, "daemon");
            output.WriteLine(full.ToString());
            Assert.False(full.Succeeded);
            Assert.Contains("instantiating", full.Stderr);
            Assert.Equal((uint)Fixture.Slots, (await fx.StatusAsync()).RunningInstances);
        }
        finally
        {
            foreach (var id in held.Append(extra))
            {
                await SharedModeResourceTests.KillAndDeleteAsync(fx, id);
            }
        }
        var after = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("freed"), [Demo, "echo", "freed"]);
        Assert.Equal("freed\n", after.Stdout);
    }
}
