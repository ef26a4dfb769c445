using System.Diagnostics;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// WASI 0.2 command components in the shared-mode daemon: the same hello component as <see cref="Shim.Tests.ComponentTests"/>
/// runs in the daemon's engine with args, env and exit codes, a second container compiles nothing, and a component
/// that is neither a command nor a proxy fails Create, and a component asleep in a WASI 0.2 clock (a host call a kill
/// cannot wake) is killed within a second and detached.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeComponentTests(SharedModeFixture fx, ITestOutputHelper output)
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

    [Fact]
    public async Task Component_asleep_in_a_wasi_clock_is_killed_within_a_second_and_the_daemon_serves_on()
    {
        await ImportAsync();
        // A first run compiles the component (and lets the daemon make its lazy state) before fds are counted.
        var warm = await fx.RunAsync(Image, NewId("sleep-warm"), ["/hello.wasm", "warm"], timeout: RunTimeout);
        Assert.True(warm.Succeeded, warm + fx.DaemonLog());
        var fdsBefore = DaemonFds();
        const int Sleep = 12;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            var id = NewId($"csleep{i}");
            using var cts = new CancellationTokenSource(RunTimeout);
            var run = fx.RunAsync(Image, id, ["/hello.wasm", $"sleep={Sleep}"], timeout: RunTimeout, ct: cts.Token);
            await SharedModeTests.WaitUntilAsync(async () => (await fx.Containerd.RunCtrAsync("task", "ls")).Split('\n').Any(l => l.StartsWith(id + " ", StringComparison.Ordinal) && l.Contains("RUNNING")), $"{id} running");
            // Into its sleep: the engine starts in milliseconds once the task runs.
            await Task.Delay(1500);
            Assert.False(run.IsCompleted, $"{id} ended before the kill: {(run.IsCompleted ? await run : null)}");

            var kill = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            var result = await run;
            kill.Stop();
            output.WriteLine($"{id}: exit {result.ExitCode} {kill.Elapsed.TotalMilliseconds:F0} ms after the kill (ctr kill, exit, ctr's delete)");

            Assert.True(result.ExitCode == 137, result + fx.DaemonLog());
            // The 500 ms grace, then the exit; ctr's kill and its delete (which must not wait for the guest) included.
            Assert.True(kill.Elapsed < TimeSpan.FromSeconds(1.5), $"{id}: {kill.Elapsed} from the kill to the exit\n{fx.DaemonLog()}");
            // Output written before the kill reached the FIFO before the exit; nothing after it.
            Assert.Contains($"sleeping {Sleep} s\n", result.Stdout);
            Assert.DoesNotContain("slept", result.Stdout);
        }
        Assert.Contains("detached", fx.DaemonLog());
        // The three detached guests still sleep: each holds a few descriptors (stdio on /dev/null, Wasmtime's stdin and
        // preopens, the stop eventfd; the sandbox's socket until containerd's shim disconnects), no more.
        var fdsDetached = DaemonFds();
        Assert.True(fdsDetached <= fdsBefore + 3 * 8, $"{fdsBefore} fds before, {fdsDetached} with three detached guests: {DaemonFdTargets()}");

        // The daemon serves another container meanwhile.
        var next = await fx.RunAsync(Image, NewId("after-sleep"), ["/hello.wasm", "after"], timeout: RunTimeout);
        Assert.True(next.Succeeded, next + fx.DaemonLog());
        Assert.Contains("\"after\"", next.Stdout);

        // When their sleeps end, the detached guests release what they held.
        var remaining = TimeSpan.FromSeconds(Sleep + 3) - watch.Elapsed;
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining);
        }
        await SharedModeTests.WaitUntilAsync(() => Task.FromResult(DaemonFds() <= fdsBefore + 2), "the detached guests' descriptors closed",
            TimeSpan.FromSeconds(20), throwOnTimeout: false);
        var fdsAfter = DaemonFds();
        output.WriteLine($"daemon fds: {fdsBefore} before, {fdsDetached} with three detached guests, {fdsAfter} after their sleeps ended");
        Assert.True(fdsAfter <= fdsBefore + 2, $"{fdsBefore} fds before, {fdsAfter} after the detached guests returned: {DaemonFdTargets()}\n{fx.DaemonLog()}");
        Assert.Equal(0u, (await fx.StatusAsync()).RunningInstances);
    }

    private int DaemonFds() => Directory.EnumerateFileSystemEntries($"/proc/{fx.DaemonPid}/fd").Count();

    private string DaemonFdTargets() => string.Join(", ", Directory.EnumerateFileSystemEntries($"/proc/{fx.DaemonPid}/fd")
        .Select(fd => { try { return new FileInfo(fd).LinkTarget ?? "?"; } catch (IOException) { return "?"; } }));

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
