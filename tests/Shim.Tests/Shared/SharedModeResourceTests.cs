using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Containerd.Api.Client;
using Containerd.Services.Tasks.V1;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// Shared-mode resources and stdin through containerd: <c>ctr task metrics</c> reads an instance's linear memory,
/// limit and CPU time in containerd's cgroup metrics types; <c>Tasks.Update</c> changes the store's memory limit and
/// the CPU quota the engine enforces by pausing the guest; a guest blocked reading its stdin FIFO is killed at once.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeResourceTests(SharedModeFixture fx, ITestOutputHelper output)
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Metrics_report_the_instance_and_update_changes_its_cpu_quota_and_memory_limit()
    {
        await MetricsAndUpdateAsync(fx, output);
    }

    [Fact]
    public async Task The_memory_limit_covers_all_of_a_stores_memories_and_tables()
    {
        // Unlimited, the guest grows its three memories by 16 MiB each and its table by a million elements.
        var free = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("memories-free"), ["/many-memories.wat"]);
        Assert.True(free.ExitCode == 15, $"exit {free.ExitCode}\n{free}");
        // Under 32 MiB, the 48 MiB they would take together is refused, each memory's share being a third of the
        // limit, less the tables' sixteenth; the table's million elements (8 MB) are past that sixteenth; a page more
        // of the first memory still fits.
        var limited = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("memories-limited"), ["/many-memories.wat"],
            ["--memory-limit", (32 << 20).ToString()]);
        Assert.True(limited.ExitCode == 0, $"exit {limited.ExitCode} (1, 2, 4: a memory grew; 8: the table; 16: the small grow failed)\n{limited}");
    }

    /// <summary>The case itself, shared with the pooled-allocator fixture.</summary>
    internal static async Task MetricsAndUpdateAsync(SharedModeFixture fx, ITestOutputHelper output)
    {
        var id = SharedModeTests.NewId("limits");
        // 16 MiB of memory: the guest's 32 MiB memory.grow fails and it spins; a fifth of one CPU.
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, "--memory-limit", (16 << 20).ToString(),
            "--cpu-quota", "20000", "--cpu-period", "100000", SharedModeFixture.TestImageName, id, "/grow.wat");
        var started = Stopwatch.StartNew();
        using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            var spinning = await MetricsAsync(fx, id);
            var elapsed = started.Elapsed;
            output.WriteLine($"throttled: {spinning} after {elapsed}");
            Assert.Equal(64UL << 10, spinning.MemoryUsage);
            Assert.Equal(16UL << 20, spinning.MemoryLimit);
            Assert.True(spinning.CpuNanos > 0, $"no CPU time: {spinning}");
            Assert.True(spinning.ThrottledPeriods > 0, $"a spinning guest at 20 % was never paused: {spinning}");
            // An upper bound the machine's load can only make easier: unthrottled, the spin would take a whole CPU.
            Assert.True(spinning.CpuNanos < elapsed.Ticks * 100 * 0.6, $"{spinning.CpuNanos} ns of CPU in {elapsed}: the quota is not enforced");

            // No quota: the pauses stop (one in progress at the update may still end and be counted).
            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"cpu":{"quota":-1,"period":100000}}"""),
            });
            await Task.Delay(TimeSpan.FromSeconds(1));
            var before = await MetricsAsync(fx, id);
            await Task.Delay(TimeSpan.FromSeconds(1));
            var free = await MetricsAsync(fx, id);
            output.WriteLine($"unthrottled: {before} then {free}");
            Assert.Equal(before.ThrottledPeriods, free.ThrottledPeriods);
            Assert.True(free.CpuNanos > before.CpuNanos);

            // 64 MiB: the guest's next memory.grow succeeds and it exits with 7.
            var wait = client.Tasks.WaitAsync(new WaitRequest { ContainerId = id }).ResponseAsync;
            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"memory":{"limit":67108864}}"""),
            });
            var exit = await wait.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(7u, exit.ExitStatus);
            Assert.Equal(64UL << 20, (await MetricsAsync(fx, id)).MemoryLimit);
        }
        finally
        {
            await KillAndDeleteAsync(fx, id);
        }
    }

    [Fact]
    public async Task Metrics_of_an_idle_demo_show_its_linear_memory()
    {
        var id = SharedModeTests.NewId("metrics");
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "daemon");
        try
        {
            await SharedModeTests.WaitUntilAsync(async () => (await MetricsAsync(fx, id)).MemoryUsage > 0, $"{id} reports memory");
            var metrics = await MetricsAsync(fx, id);
            output.WriteLine(metrics.ToString());
            Assert.Equal(0UL, metrics.MemoryUsage % (64 << 10));
            Assert.Equal(0UL, metrics.MemoryLimit);
            Assert.Equal(0UL, metrics.ThrottledPeriods);
        }
        finally
        {
            await KillAndDeleteAsync(fx, id);
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task A_guest_blocked_reading_stdin_is_killed_promptly_while_others_keep_running()
    {
        await StdinKillAsync(fx, output);
    }

    /// <summary>The case itself, shared with the pooled-allocator fixture.</summary>
    internal static async Task StdinKillAsync(SharedModeFixture fx, ITestOutputHelper output)
    {
        var others = Enumerable.Range(0, 5).Select(i => SharedModeTests.NewId($"reader-bystander{i}")).ToList();
        var id = SharedModeTests.NewId("stdin");
        using var ctr = StartCtr(fx, ["run", "--rm", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, "/cat-stdin.wat"]);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        ctr.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        ctr.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        ctr.BeginOutputReadLine();
        ctr.BeginErrorReadLine();
        try
        {
            foreach (var other in others)
            {
                await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, other, Demo, "daemon");
            }
            // A line through the stdin FIFO and back proves the guest reads it; then it blocks in the next read.
            await ctr.StandardInput.WriteLineAsync("through the fifo");
            await ctr.StandardInput.FlushAsync();
            await SharedModeTests.WaitUntilAsync(() => Task.FromResult(Text(stdout).Contains("through the fifo")),
                $"the echo of stdin (stderr: {Text(stderr)})", TimeSpan.FromSeconds(60));
            await Task.Delay(300);

            var watch = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await ctr.WaitForExitAsync(patience.Token);
            output.WriteLine($"the reader stopped {watch.Elapsed.TotalMilliseconds:0} ms after the kill");
            Assert.Equal(137, ctr.ExitCode);
            // Generous: the 1 s target is a benchmark figure; this catches a kill that waits for stdin to close.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
            foreach (var other in others)
            {
                Assert.Contains("RUNNING", await TaskLineAsync(fx, other));
            }
        }
        finally
        {
            if (!ctr.HasExited)
            {
                await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
                ctr.StandardInput.Close();
                using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await ctr.WaitForExitAsync(patience.Token);
                }
                catch (OperationCanceledException)
                {
                    ctr.Kill(entireProcessTree: true);
                }
            }
            await KillAndDeleteAsync(fx, id);
            foreach (var other in others)
            {
                await KillAndDeleteAsync(fx, other);
            }
        }
    }

    internal readonly record struct InstanceMetrics(ulong MemoryUsage, ulong MemoryLimit, ulong CpuNanos, ulong ThrottledPeriods);

    /// <summary><c>ctr task metrics --format json</c>, cgroup v1 or v2 figures alike.</summary>
    internal static async Task<InstanceMetrics> MetricsAsync(SharedModeFixture fx, string id)
    {
        var json = await fx.Containerd.RunCtrAsync("task", "metrics", "--format", "json", id);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        static ulong At(JsonElement e, params string[] path)
        {
            foreach (var name in path)
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out e))
                {
                    return 0;
                }
            }
            return e.ValueKind == JsonValueKind.Number ? e.GetUInt64() : 0;
        }
        // v2 has memory.usage as a number and cpu.usage_usec; v1 memory.usage.usage and cpu.usage.total.
        return root.TryGetProperty("cpu", out var cpu) && cpu.TryGetProperty("usage_usec", out _)
            || root.TryGetProperty("memory", out var mem) && mem.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Number
            ? new InstanceMetrics(At(root, "memory", "usage"), At(root, "memory", "usage_limit"), At(root, "cpu", "usage_usec") * 1000,
                At(root, "cpu", "nr_throttled"))
            : new InstanceMetrics(At(root, "memory", "usage", "usage"), At(root, "memory", "usage", "limit"), At(root, "cpu", "usage", "total"),
                At(root, "cpu", "throttling", "throttled_periods"));
    }

    internal static async Task KillAndDeleteAsync(SharedModeFixture fx, string id)
    {
        await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
        await SharedModeTests.WaitUntilAsync(async () => !(await TaskLineAsync(fx, id)).Contains("RUNNING"), $"{id} stopped",
            TimeSpan.FromSeconds(30), throwOnTimeout: false);
        await fx.Containerd.CtrAsync("task", "delete", id);
        await fx.Containerd.CtrAsync("container", "delete", id);
    }

    private static async Task<string> TaskLineAsync(SharedModeFixture fx, string id) =>
        (await fx.Containerd.RunCtrAsync("task", "ls")).Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    private static string Text(StringBuilder b)
    {
        lock (b)
        {
            return b.ToString();
        }
    }

    // ctr with a stdin pipe this test keeps open: ctr copies it into the task's stdin FIFO.
    private static Process StartCtr(SharedModeFixture fx, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(fx.Containerd.CtrPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--address", fx.Containerd.Address, "--namespace", fx.Containerd.Namespace, "run", "--fifo-dir", fx.Containerd.FifoDir }
            .Concat(args.Skip(1)))
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["PATH"] = fx.Containerd.ContainerdPath;
        return Process.Start(psi) ?? throw new InvalidOperationException("cannot start ctr");
    }
}
