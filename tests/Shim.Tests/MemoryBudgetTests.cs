using Containerd.Api.Client;
using Containerd.Events;
using Containerd.Shim.Wasm;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// A C program under <c>ctr run --memory-limit</c> gets the limit less what the container's cgroup is charged before
/// it starts, less a margin: it mallocs 1 MiB blocks, writing every page, until malloc returns NULL. A program that
/// checks prints how many it got and exits 0; one that treats the failure as fatal aborts, which traps, and the task
/// ends with the trap's status. Either way the exit is the program's, published as <c>/tasks/exit</c>: the kernel's
/// OOM killer never strikes (no 137, no <c>/tasks/oom</c>).
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MemoryBudgetTests(WasmShimFixture fx, ITestOutputHelper output) : MemoryBudgetCases<WasmShimFixture>(fx, output);

/// <summary>The memory-limit cases every wasm shim passes, run by one subclass per shim against its fixture.</summary>
public abstract class MemoryBudgetCases<TFixture>(TFixture fx, ITestOutputHelper output)
    where TFixture : WasmShimFixture
{
    private const string ImageName = "localhost/runwasi-dotnet/malloc-probe:latest";

    private static readonly SemaphoreSlim ImageGate = new(1, 1);
    private static ContainerdFixture? _imported;

    [Theory]
    [InlineData(64, 48)]
    [InlineData(128, 108)]
    public async Task C_program_gets_most_of_the_memory_limit_and_then_a_failed_malloc_not_an_oom_kill(int limitMib, int atLeastMib)
    {
        var (result, exitStatus) = await RunProbeAsync($"malloc-{limitMib}", limitMib, []);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(0u, exitStatus);
        var mib = Mib(result.Stdout, "malloc: ");
        atLeastMib -= fx.EngineHeldMib;
        Assert.True(mib >= atLeastMib, $"under a {limitMib} MiB limit malloc got {mib} MiB, less than {atLeastMib}");
        Assert.True(mib < limitMib, $"under a {limitMib} MiB limit malloc got {mib} MiB");
    }

    [Fact]
    public async Task C_program_that_aborts_when_malloc_fails_ends_with_the_trap_status_not_an_oom_kill()
    {
        var (result, exitStatus) = await RunProbeAsync("malloc-abort", 64, ["4096", "abort"]);
        Assert.Equal(ExitCodes.Trap, result.ExitCode);
        Assert.Equal((uint)ExitCodes.Trap, exitStatus);
        var line = result.Stderr.Split('\n').Single(l => l.StartsWith("malloc: ", StringComparison.Ordinal));
        Assert.EndsWith(" MiB, then out of memory", line);
        var mib = Mib(line, "malloc: ");
        Assert.True(mib >= 48 - fx.EngineHeldMib && mib < 64, $"under a 64 MiB limit malloc got {mib} MiB before it failed");
    }

    // Runs the probe under the limit and returns ctr's result and the status /tasks/exit carried, after checking that
    // no /tasks/oom came for the container first (containerd publishes the OOM event before the exit).
    private async Task<(ProcessResult Result, uint ExitStatus)> RunProbeAsync(string prefix, int limitMib, string[] args)
    {
        await EnsureImageAsync();
        var id = WasmShimFixture.NewId(prefix);
        using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await using var events = await EventSubscription.StartAsync(client,
                [EventFilters.Topic("/tasks/oom"), EventFilters.Topic("/tasks/exit")], cts.Token);
            var result = await fx.RunAsync(ImageName, id, ["/probe.wasm", .. args],
                ["--memory-limit", ((long)limitMib << 20).ToString()]);
            output.WriteLine(result.ToString());
            var oom = false;
            var exit = await events.WaitForAsync(e =>
            {
                if (e.Topic == "/tasks/oom" && e.TryUnpack<TaskOOM>(out var o) && o.ContainerId == id)
                {
                    oom = true;
                }
                return e.Topic == "/tasks/exit" && e.TryUnpack<TaskExit>(out var x) && x.ContainerId == id;
            }, cts.Token);
            Assert.False(oom, $"the kernel OOM-killed the task of {id}");
            Assert.True(exit.TryUnpack<TaskExit>(out var message));
            output.WriteLine($"/tasks/exit: status {message.ExitStatus}");
            return (result, message.ExitStatus);
        }
        finally
        {
            // ctr run --rm deletes it; this is for a run that timed out or failed half-way.
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    private static int Mib(string text, string prefix)
    {
        var line = text.Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return int.Parse(line[prefix.Length..].Split(' ')[0]);
    }

    private async Task EnsureImageAsync()
    {
        await ImageGate.WaitAsync();
        try
        {
            if (_imported != fx.Containerd)
            {
                var probe = await TestImages.EnsureMallocProbeWasmAsync();
                var image = TestImages.Build("malloc-probe", new ImageDefinition
                {
                    Name = ImageName,
                    Platform = Platform.LinuxAmd64,
                    Config = new ImageConfig { Entrypoint = ["/probe.wasm"] },
                    Layers = [new FilesystemLayer([LayerEntry.File("probe.wasm", probe, Modes.Executable)])],
                });
                await fx.Containerd.ImportAsync(image.TarPath);
                _imported = fx.Containerd;
            }
        }
        finally
        {
            ImageGate.Release();
        }
    }
}
