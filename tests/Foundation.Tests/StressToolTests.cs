using System.Text.Json;
using Containerd.Testing;
using Stress;
using Xunit;

namespace Foundation.Tests;

/// <summary>
/// The stress tool (tools/Stress) through its in-process entry point against a private containerd with the installed
/// wasm shim and runc: every task succeeds, the JSON output is what benchmark-action reads, an unreachable containerd
/// gives a clear error, and nothing the tool created is left behind, even after an interrupted run.
/// </summary>
[Trait("Category", "Integration")]
public sealed class StressToolTests(StressToolTests.Containerd fixture) : IClassFixture<StressToolTests.Containerd>
{
    private const string DemoImage = "ghcr.io/containerd/runwasi/wasi-demo-app:latest";
    private const string BusyboxImage = "docker.io/library/busybox:latest";
    private static readonly string[] Phases = ["create", "start", "wait", "delete"];

    [Fact]
    public async Task WasmDemoTasksAllSucceedAndJsonHasEveryMeasure()
    {
        var json = Path.Combine(fixture.Instance.WorkDir, "wasm.json");
        var (code, stdout, stderr) = await RunAsync(
            ["--count", "20", "--parallel", "4", "--image", DemoImage, "--json-output", json, "--name", "wasm",
             "--", "/wasi-demo-app.wasm", "echo", "hello"]);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("20 tasks (20 ok, 0 failed)", stdout);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var entries = document.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
        string[] expected = ["wasm tasks/s", "wasm elapsed", .. Phases.SelectMany(p => new[] { $"wasm {p} p50", $"wasm {p} p90", $"wasm {p} p99" })];
        Assert.Equal(expected.Order(), entries.Keys.Order());
        Assert.True(entries["wasm tasks/s"].GetProperty("value").GetDouble() > 0);
        Assert.Equal("tasks/s", entries["wasm tasks/s"].GetProperty("unit").GetString());
        Assert.Equal("ms", entries["wasm start p50"].GetProperty("unit").GetString());
        Assert.True(entries["wasm wait p99"].GetProperty("value").GetDouble() >= entries["wasm wait p50"].GetProperty("value").GetDouble());
        Assert.Contains("count=20", entries["wasm elapsed"].GetProperty("extra").GetString());
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task RuncBusyboxTasksAllSucceed()
    {
        var (code, stdout, stderr) = await RunAsync(
            ["--count", "8", "--parallel", "4", "--runtime", "io.containerd.runc.v2", "--image", BusyboxImage, "--", "echo", "hello"]);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("8 tasks (8 ok, 0 failed)", stdout);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task FailingTaskIsReportedAndCleanedUp()
    {
        var (code, stdout, _) = await RunAsync(
            ["--count", "2", "--runtime", "io.containerd.runc.v2", "--image", BusyboxImage, "--", "false"]);

        Assert.Equal(1, code);
        Assert.Contains("exited with status 1", stdout);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task UnreachableContainerdIsAClearError()
    {
        var missing = Path.Combine(fixture.Instance.WorkDir, "nobody-listens.sock");
        var (code, _, stderr) = await RunAsync(["--address", missing, "--count", "1"], address: null);

        Assert.Equal(2, code);
        Assert.Contains("containerd is not reachable", stderr);
        Assert.Contains(missing, stderr);
    }

    [Fact]
    public async Task RuntimeWhoseShimIsMissingStopsTheRunWithAClearError()
    {
        var (code, _, stderr) = await RunAsync(
            ["--count", "6", "--parallel", "2", "--runtime", "io.containerd.nosuch.v1", "--image", BusyboxImage, "--", "true"]);

        Assert.Equal(2, code);
        Assert.Contains("runtime io.containerd.nosuch.v1 could not create a task", stderr);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task InterruptedRunRemovesEverythingItCreated()
    {
        using var interrupt = new CancellationTokenSource();
        var run = RunAsync(
            ["--count", "6", "--parallel", "3", "--runtime", "io.containerd.runc.v2", "--image", BusyboxImage, "--", "sleep", "60"],
            cancellationToken: interrupt.Token);
        // Interrupt once tasks are really running, as a user's Ctrl-C would.
        var running = false;
        for (var i = 0; i < 100 && !(running = (await fixture.Instance.RunCtrAsync("tasks", "ls")).Contains("RUNNING")); i++)
        {
            await Task.Delay(100);
        }
        await interrupt.CancelAsync();
        var (code, stdout, stderr) = await run;

        Assert.True(running, "no task was running before the interrupt");
        Assert.True(code == 1, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("interrupted", stderr);
        Assert.Contains(": interrupted", stdout);
        await AssertNothingLeftAsync();
    }

    [Fact]
    public async Task ShimModeRunsTheShimAloneWithTheMockEventEndpoint()
    {
        var ns = "stress-shim-" + Environment.ProcessId;
        var json = Path.Combine(fixture.Instance.WorkDir, "shim.json");
        var (code, stdout, stderr) = await RunShimModeAsync(ns, ["--count", "20", "--parallel", "4", "--json-output", json, "--", "/wasi-demo-app.wasm", "echo", "hi"]);

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("20 tasks (20 ok, 0 failed)", stdout);
        // Every task publishes at least create, start and exit.
        var events = int.Parse(System.Text.RegularExpressions.Regex.Match(stdout, @"events forwarded to the mock endpoint: (\d+)").Groups[1].Value);
        Assert.True(events >= 60, stdout);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var names = document.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        Assert.Contains("stress shim containerd-shim-wasmtime-v1 tasks/s", names);
        Assert.Contains("stress shim containerd-shim-wasmtime-v1 create p99", names);
        await AssertNoShimLeftAsync(ns);
    }

    [Fact]
    public async Task ShimModeDrivesTheSharedModeClientShimAndItsDaemon()
    {
        // The shared-mode client shim's task pid is the daemon's, which outlives every task: a task still counts as
        // done (not failed) once its sandbox socket is gone.
        var dir = Directory.CreateTempSubdirectory("stress-wtd-");
        var socket = Path.Combine(dir.FullName, "manager.sock");
        var daemon = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(Path.Combine(fixture.ShimDir, "containerd-wasmtimed"))
        {
            ArgumentList = { "--socket", socket },
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var log = daemon.StandardError.ReadToEndAsync();
        var before = Environment.GetEnvironmentVariable("CONTAINERD_WASMTIMED_SOCKET");
        try
        {
            for (var i = 0; i < 600 && !File.Exists(socket) && !daemon.HasExited; i++)
            {
                await Task.Delay(100);
            }
            Assert.True(File.Exists(socket), "the daemon did not come up");
            // The tool starts the client shim with its own environment, which is how the shim finds this daemon.
            Environment.SetEnvironmentVariable("CONTAINERD_WASMTIMED_SOCKET", socket);
            var ns = "stress-shared-" + Environment.ProcessId;
            var rootfs = Directory.CreateTempSubdirectory("stress-rootfs-");
            try
            {
                File.Copy(await TestImages.EnsureDemoWasmAsync(), Path.Combine(rootfs.FullName, "wasi-demo-app.wasm"));
                using var stdout = new StringWriter();
                using var stderr = new StringWriter();
                var code = await StressTool.RunAsync(
                    ["--mode", "shim", "--shim", Path.Combine(fixture.ShimDir, "containerd-shim-wasmtimed-v1"), "--rootfs", rootfs.FullName,
                     "--namespace", ns, "--count", "20", "--parallel", "4", "--", "/wasi-demo-app.wasm", "echo", "hi"],
                    stdout, stderr, interactive: false);
                Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
                Assert.Contains("20 tasks (20 ok, 0 failed)", stdout.ToString());
                var events = int.Parse(System.Text.RegularExpressions.Regex.Match(stdout.ToString(), @"events forwarded to the mock endpoint: (\d+)").Groups[1].Value);
                Assert.True(events >= 60, stdout.ToString());
            }
            finally
            {
                rootfs.Delete(recursive: true);
            }
            Assert.False(daemon.HasExited, "the daemon died");
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(dir.FullName, "sandboxes")));
        }
        finally
        {
            Environment.SetEnvironmentVariable("CONTAINERD_WASMTIMED_SOCKET", before);
            if (!daemon.HasExited)
            {
                daemon.Kill();
            }
            await daemon.WaitForExitAsync();
            await log;
            daemon.Dispose();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ShimModeInterruptedTakesItsShimsDown()
    {
        var ns = "stress-shim-int-" + Environment.ProcessId;
        using var interrupt = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var (code, stdout, stderr) = await RunShimModeAsync(ns, ["--count", "4", "--parallel", "2", "--", "/wasi-demo-app.wasm", "daemon"], interrupt.Token);

        Assert.True(code == 1, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("interrupted", stderr);
        Assert.Contains(": interrupted", stdout);
        await AssertNoShimLeftAsync(ns);
    }

    [Fact]
    public async Task ShimModeWithoutAShimIsAClearError()
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await StressTool.RunAsync(
            ["--mode", "shim", "--shim", "/nonexistent/shim", "--rootfs", "/tmp", "--", "x"], stdout, stderr, interactive: false);

        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/shim", stderr.ToString());
    }

    private async Task<(int Code, string Stdout, string Stderr)> RunShimModeAsync(string ns, string[] args, CancellationToken cancellationToken = default)
    {
        var rootfs = Directory.CreateTempSubdirectory("stress-rootfs-");
        try
        {
            File.Copy(await TestImages.EnsureDemoWasmAsync(), Path.Combine(rootfs.FullName, "wasi-demo-app.wasm"));
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();
            var code = await StressTool.RunAsync(
                ["--mode", "shim", "--shim", Path.Combine(fixture.ShimDir, "containerd-shim-wasmtime-v1"), "--rootfs", rootfs.FullName,
                 "--namespace", ns, .. args],
                stdout, stderr, interactive: false, cancellationToken);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            rootfs.Delete(recursive: true);
        }
    }

    // Shims and their instance processes carry the namespace on their command line. A shim server removes its socket
    // (which is what tells the tool it is gone) just before it exits, so a few seconds are allowed for that exit.
    private static async Task AssertNoShimLeftAsync(string ns)
    {
        List<string> left;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            left = [.. HostScanner.ProcessesMentioning($"-namespace {ns} ")];
            if (left.Count == 0 || DateTime.UtcNow > until)
            {
                break;
            }
            await Task.Delay(100);
        }
        Assert.Empty(left);
        AssertNoCgroupLeftAndRemoveParent(ns);
    }

    // The spec puts every task at /<namespace>/<id>: the shims must have removed each task's cgroup, and the
    // namespace's parent, which only this test uses, is removed here so runs do not pile up cgroups on the host.
    private static void AssertNoCgroupLeftAndRemoveParent(string ns)
    {
        var parents = Directory.EnumerateDirectories("/sys/fs/cgroup")
            .Select(hierarchy => Path.Combine(hierarchy, ns))
            .Append(Path.Combine("/sys/fs/cgroup", ns))
            .Where(Directory.Exists)
            .ToList();
        var leftover = parents.SelectMany(Directory.EnumerateDirectories).ToList();
        foreach (var parent in parents)
        {
            try
            {
                Directory.Delete(parent);
            }
            catch (IOException)
            {
                // A task cgroup is still in it: reported below.
            }
        }
        Assert.Empty(leftover);
    }

    private async Task<(int Code, string Stdout, string Stderr)> RunAsync(
        string[] args, string? address = "", CancellationToken cancellationToken = default)
    {
        string[] connection = address is null ? [] : ["--address", fixture.Instance.Address];
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await StressTool.RunAsync(
            [.. connection, "--namespace", fixture.Instance.Namespace, .. args], stdout, stderr, interactive: false, cancellationToken);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private async Task AssertNothingLeftAsync()
    {
        Assert.DoesNotContain(Lines(await fixture.Instance.RunCtrAsync("containers", "ls", "-q")), IsStressLine);
        Assert.DoesNotContain(Lines(await fixture.Instance.RunCtrAsync("tasks", "ls")), IsStressLine);
        Assert.DoesNotContain(Lines(await fixture.Instance.RunCtrAsync("snapshots", "ls")), IsStressLine);
    }

    private static bool IsStressLine(string line) => line.StartsWith("stress-", StringComparison.Ordinal);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>One private containerd with the installed wasm shim on its PATH and the demo and busybox images imported.</summary>
    public sealed class Containerd : IAsyncLifetime
    {
        private ContainerdFixture? _instance;

        /// <summary>The folder holding the installed shim.</summary>
        public string ShimDir { get; private set; } = "";

        /// <summary>The running containerd.</summary>
        public ContainerdFixture Instance => _instance ?? throw new InvalidOperationException("not started");

        /// <inheritdoc />
        public async Task InitializeAsync()
        {
            ShimDir = await ShimBinary.DirAsync();
            _instance = await ContainerdFixture.StartAsync(new ContainerdOptions { ShimBinDir = ShimDir });
            await _instance.ImportAsync((await TestImages.BuildDemoAsync()).TarPath);
            await _instance.ImportAsync((await TestImages.BuildBusyboxAsync()).TarPath);
        }

        /// <inheritdoc />
        public async Task DisposeAsync()
        {
            if (_instance is not null)
            {
                await _instance.DisposeAsync();
            }
        }
    }
}
