using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Containerd.Api.Client;
using Containerd.Services.Tasks.V1;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// One tenant attacking its own wasi:http container in the shared-mode daemon, through a private containerd, while
/// another tenant's container in the same daemon keeps serving: a flood of slow-header connections is cut off by the
/// header timeout (the daemon's default, 10 s), and SIGINT with a request in flight to a guest that spins forever
/// ends the task within the drain deadline (default 5 s) instead of never.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeHttpLimitsTests(SharedModeFixture fx, ITestOutputHelper output)
{
    private const string EchoImage = "localhost/runwasi-dotnet/shared-http-echo:latest";
    private const string EchoModule = "/http-echo.wasm";
    internal const string SpinImage = "localhost/runwasi-dotnet/shared-http-limits:latest";
    internal const string SpinModule = "/http-limits.wasm";
    private static readonly IPEndPoint Address = new(IPAddress.Loopback, 8080);
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Slow_header_flood_against_one_container_is_cut_off_while_another_keeps_answering()
    {
        await ImportAsync(fx, "shared-http-echo", EchoImage, EchoModule, HttpEchoComponent.PathOf);
        await using var victimNs = await NetNs.CreateAsync();
        await using var healthyNs = await NetNs.CreateAsync();
        var victimId = NewId("slimit-victim");
        var healthyId = NewId("slimit-healthy");
        var victim = RunAsync(EchoImage, EchoModule, victimId, victimNs);
        var healthy = RunAsync(EchoImage, EchoModule, healthyId, healthyNs);
        var sockets = new List<Socket>();
        try
        {
            await WaitServingAsync(fx, victimNs, victim);
            await WaitServingAsync(fx, healthyNs, healthy);
            using var client = ClientIn(healthyNs);
            await client.GetStringAsync("/warm");
            var before = await LatenciesAsync(client, 50);

            const int Slow = 300;
            for (var i = 0; i < Slow; i++)
            {
                sockets.Add(await victimNs.ConnectAsync(Address));
            }
            var started = Stopwatch.StartNew();
            using var flood = new CancellationTokenSource();
            var closedAt = new TimeSpan?[Slow];
            var all = Task.WhenAll(sockets.Select((s, i) => TrickleAsync(s, i, closedAt, started, flood.Token)));
            var during = new List<double>();
            while (!all.IsCompleted && started.Elapsed < TimeSpan.FromSeconds(40))
            {
                during.AddRange(await LatenciesAsync(client, 5));
                await Task.Delay(20);
            }
            flood.Cancel();
            await all;

            // Every slow connection was closed by the server, at the header timeout (10 s, checked once a second).
            Assert.All(closedAt, at => Assert.NotNull(at));
            Assert.All(closedAt, at => Assert.InRange(at!.Value, TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(25)));
            // The attacked container itself serves again.
            var after = await CurlAsync(victimNs, "http://127.0.0.1:8080/after");
            Assert.True(after.Succeeded, after + fx.DaemonLog());
            Assert.StartsWith("method=GET\npath=/after\n", after.Stdout);
            output.WriteLine($"shared mode, healthy container's median GET latency: {Median(before):F2} ms without the flood, " +
                $"{Median(during):F2} ms during {Slow} slow connections against the other container ({during.Count} GETs; " +
                $"p90 {Percentile(before, 0.9):F2} / {Percentile(during, 0.9):F2} ms); slow connections closed after " +
                $"{closedAt.Min()!.Value.TotalSeconds:F1}-{closedAt.Max()!.Value.TotalSeconds:F1} s");
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
            await CleanUpAsync(victimId, victim);
            await CleanUpAsync(healthyId, healthy);
        }
    }

    [Fact]
    public async Task Sigint_with_a_request_in_flight_to_a_spinning_guest_ends_the_task_within_the_drain_deadline()
    {
        await ImportAsync(fx, "shared-http-limits", SpinImage, SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("slimit-spin");
        var run = RunAsync(SpinImage, SpinModule, id, netns);
        try
        {
            await WaitServingAsync(fx, netns, run);
            using var client = ClientIn(netns);
            Assert.Equal("ok\n", await client.GetStringAsync("/"));
            var spinning = client.GetAsync("/spin");
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.False(spinning.IsCompleted);

            var stop = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            stop.Stop();
            output.WriteLine($"shared mode, SIGINT with a spinning guest: task exited after {stop.Elapsed.TotalSeconds:F2} s (drain deadline 5 s)");

            Assert.True(exit.ExitCode == 0, exit + fx.DaemonLog());
            // The default drain deadline, plus ctr's and containerd's own time.
            Assert.InRange(stop.Elapsed, TimeSpan.FromSeconds(4.5), TimeSpan.FromSeconds(5 + 5));
            // The connection was aborted, and the guest trapped (its reason is on the container's stderr).
            await Assert.ThrowsAsync<HttpRequestException>(() => spinning);
            Assert.Contains("the request was aborted", exit.Stderr);
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task Sigkill_wakes_guests_asleep_in_a_poll_and_the_task_exits_promptly()
    {
        await ImportAsync(fx, "shared-http-limits", SpinImage, SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("slimit-sleep");
        var run = RunAsync(SpinImage, SpinModule, id, netns);
        try
        {
            await WaitServingAsync(fx, netns, run);
            using var client = ClientIn(netns);
            // Two guests, each in a ten-minute timer: StarlingMonkey's event loop blocks in wasi:io/poll's poll.
            var sleeping = new[] { client.GetAsync("/sleep"), client.GetAsync("/sleep") };
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.DoesNotContain(sleeping, s => s.IsCompleted);

            var stop = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            stop.Stop();
            output.WriteLine($"shared mode, SIGKILL with two guests asleep in a poll: task exited after {stop.Elapsed.TotalSeconds:F2} s");

            Assert.True(exit.ExitCode == 137, exit + fx.DaemonLog());
            Assert.True(stop.Elapsed < TimeSpan.FromSeconds(2), $"{stop.Elapsed} from the kill to the exit\n{fx.DaemonLog()}");
            foreach (var request in sleeping)
            {
                await Assert.ThrowsAsync<HttpRequestException>(() => request);
            }
            // The guests woke in the host's poll and trapped there, not at a deadline.
            Assert.Contains("woken from a poll", exit.Stderr);
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task A_proxys_cpu_quota_holds_all_its_guests_together_and_an_update_lifts_it()
    {
        await ImportAsync(fx, "shared-http-limits", SpinImage, SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("slimit-cpu");
        // A fifth of one CPU for the whole container, and 64 MiB for each request's store.
        var run = RunAsync(SpinImage, SpinModule, id, netns,
            ["--cpu-quota", "20000", "--cpu-period", "100000", "--memory-limit", (64 << 20).ToString()]);
        try
        {
            await WaitServingAsync(fx, netns, run);
            using var client = ClientIn(netns);
            var baseline = await SharedModeResourceTests.MetricsAsync(fx, id);
            var started = Stopwatch.StartNew();
            // Two guests spinning forever: unthrottled they would take two CPUs.
            var spinning = new[] { client.GetAsync("/spin"), client.GetAsync("/spin") };
            await Task.Delay(TimeSpan.FromSeconds(3));
            var held = await SharedModeResourceTests.MetricsAsync(fx, id);
            var elapsed = started.Elapsed;
            output.WriteLine($"shared mode, two spinning proxy guests at 20 % of a CPU: {held} after {elapsed}");
            Assert.Equal(64UL << 20, held.MemoryLimit);
            Assert.True(held.ThrottledPeriods > baseline.ThrottledPeriods, $"spinning guests at 20 % were never paused: {held}");
            var used = held.CpuNanos - baseline.CpuNanos;
            Assert.True(used > 0, $"no CPU time charged: {held}");
            // An upper bound the machine's load can only make easier: the two guests together, not each.
            Assert.True(used < elapsed.Ticks * 100 * 0.45, $"{used} ns of CPU in {elapsed}: the quota is not enforced across the guests");

            // No quota: the pauses stop and the guests take what the machine gives them.
            using var containerd = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
            await containerd.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"cpu":{"quota":-1,"period":100000},"memory":{"limit":134217728}}"""),
            });
            await Task.Delay(TimeSpan.FromSeconds(1));
            var before = await SharedModeResourceTests.MetricsAsync(fx, id);
            var window = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(1));
            var free = await SharedModeResourceTests.MetricsAsync(fx, id);
            output.WriteLine($"unthrottled: {before} then {free} in {window.Elapsed}");
            Assert.Equal(128UL << 20, free.MemoryLimit);
            Assert.Equal(before.ThrottledPeriods, free.ThrottledPeriods);
            Assert.True(free.CpuNanos - before.CpuNanos > window.Elapsed.Ticks * 100 * 0.25,
                $"{free.CpuNanos - before.CpuNanos} ns of CPU in {window.Elapsed} without a quota");
            Assert.DoesNotContain(spinning, s => s.IsCompleted);

            // A kill still ends guests at once, paused or not.
            var stop = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 137, exit + fx.DaemonLog());
            Assert.True(stop.Elapsed < TimeSpan.FromSeconds(3), $"{stop.Elapsed} from the kill to the exit");
            foreach (var request in spinning)
            {
                await Assert.ThrowsAsync<HttpRequestException>(() => request);
            }
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task The_specs_pids_limit_caps_the_guests_a_proxy_runs_at_once()
    {
        _ = HttpLimitsComponent.Wasm;
        await using var netns = await NetNs.CreateAsync();
        // ctr has no flag for the pids limit: the spec is written by hand.
        await using var c = ConfigContainer.Create(fx.Containerd, SharedModeFixture.Runtime, "slimit-pids", HttpLimitsComponent.PathOf);
        c.Namespace("network", netns.Path);
        c.Process["env"] = new System.Text.Json.Nodes.JsonArray("PATH=/", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080");
        c.Spec["linux"]!["resources"] = System.Text.Json.Nodes.JsonNode.Parse("{\"pids\":{\"limit\":1}}");
        await c.StartDetachedAsync();
        await WaitServingAsync(fx, netns, new TaskCompletionSource<ProcessResult>().Task);
        using var client = ClientIn(netns);
        var asleep = client.GetAsync("/sleep");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(asleep.IsCompleted);

        // The one guest the limit allows is asleep: the next request waits its queue timeout (1 s), then gets 503.
        using var second = await client.GetAsync("/second");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Contains("1 requests are being served", await second.Content.ReadAsStringAsync());
        await c.DeleteAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => asleep);
    }

    [Fact]
    public async Task A_guest_asleep_in_a_poll_ends_when_its_client_goes_away()
    {
        await ImportAsync(fx, "shared-http-limits", SpinImage, SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("slimit-gone");
        var run = RunAsync(SpinImage, SpinModule, id, netns);
        try
        {
            await WaitServingAsync(fx, netns, run);
            using (var socket = await netns.ConnectAsync(Address))
            {
                await socket.SendAsync(Encoding.ASCII.GetBytes("GET /sleep HTTP/1.1\r\nHost: a\r\n\r\n"));
                await Task.Delay(TimeSpan.FromSeconds(1.5));
            }
            // The client is gone; its guest wakes on the request's abort and traps.
            await Task.Delay(TimeSpan.FromSeconds(1));

            // With nothing in flight SIGINT's drain ends at once; a guest still asleep would hold it to the 5 s deadline.
            var stop = Stopwatch.StartNew();
            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            stop.Stop();
            output.WriteLine($"shared mode, SIGINT after a sleeping guest's client left: task exited after {stop.Elapsed.TotalSeconds:F2} s");

            Assert.True(exit.ExitCode == 0, exit + fx.DaemonLog());
            Assert.True(stop.Elapsed < TimeSpan.FromSeconds(3), $"{stop.Elapsed} from SIGINT to the exit\n{fx.DaemonLog()}");
            Assert.Contains("woken from a poll", exit.Stderr);
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    internal static async Task ImportAsync(SharedModeFixture fx, string name, string image, string module, string wasm)
    {
        _ = name == "shared-http-echo" ? HttpEchoComponent.Wasm : HttpLimitsComponent.Wasm; // builds it when `make` has not
        var tar = TestImages.Build(name, new ImageDefinition
        {
            Name = image,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [module] },
            Layers = [new FilesystemLayer([LayerEntry.File(module.TrimStart('/'), wasm, Modes.Executable)])],
        });
        await fx.Containerd.ImportAsync(tar.TarPath);
    }

    private Task<ProcessResult> RunAsync(string image, string module, string id, NetNs netns, IEnumerable<string>? options = null) =>
        RunProxyAsync(fx, image, module, id, netns, options);

    /// <summary><c>ctr run --rm</c> of a proxy component listening on 127.0.0.1:8080 in <paramref name="netns"/>.</summary>
    internal static Task<ProcessResult> RunProxyAsync(SharedModeFixture fx, string image, string module, string id, NetNs netns,
        IEnumerable<string>? options = null) =>
        fx.RunAsync(image, id, [module],
            ["--with-ns", $"network:{netns.Path}", "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080", .. options ?? []],
            ServeTimeout + TimeSpan.FromMinutes(2));

    internal static Task<ProcessResult> CurlAsync(NetNs netns, string url) =>
        ProcessRunner.RunAsync("nsenter", [$"--net={netns.Path}", "curl", "-sS", "--max-time", "30", url], timeout: TimeSpan.FromMinutes(1));

    // Retried until the component (compiled at Create) listens.
    internal static async Task WaitServingAsync(SharedModeFixture fx, NetNs netns, Task<ProcessResult> run)
    {
        var until = DateTime.UtcNow + ServeTimeout;
        while (true)
        {
            var result = await CurlAsync(netns, "http://127.0.0.1:8080/up");
            if (result.Succeeded)
            {
                return;
            }
            if (run.IsCompleted)
            {
                Assert.Fail($"the container ended while curl waited for it: {await run}\ncurl: {result}\n{fx.DaemonLog()}");
            }
            Assert.True(DateTime.UtcNow < until, $"nothing answered on 127.0.0.1:8080 in {netns.Path} within {ServeTimeout}: {result}\n{fx.DaemonLog()}");
            await Task.Delay(500);
        }
    }

    /// <summary>An HttpClient whose connections are made inside <paramref name="netns"/>.</summary>
    internal static HttpClient ClientIn(NetNs netns) =>
        new(new SocketsHttpHandler { ConnectCallback = async (_, _) => new NetworkStream(await netns.ConnectAsync(Address), ownsSocket: true) })
        {
            BaseAddress = new Uri("http://127.0.0.1:8080"),
            Timeout = TimeSpan.FromSeconds(60),
        };

    /// <summary>Sends one byte of a request a second until the server closes the connection; records when.</summary>
    private static async Task TrickleAsync(Socket socket, int i, TimeSpan?[] closedAt, Stopwatch started, CancellationToken stop)
    {
        var request = Encoding.ASCII.GetBytes($"GET /slow/{i} HTTP/1.1\r\nHost: a\r\nx-slow: {new string('s', 200)}\r\n\r\n");
        var closed = ClosedAsync(socket);
        for (var k = 0; k < request.Length && !stop.IsCancellationRequested; k++)
        {
            try
            {
                await socket.SendAsync(request.AsMemory(k, 1));
            }
            catch (SocketException)
            {
                break;
            }
            if (await Task.WhenAny(closed, Task.Delay(TimeSpan.FromSeconds(1), stop).ContinueWith(_ => { }, TaskScheduler.Default)) == closed)
            {
                break;
            }
        }
        if (closed.IsCompleted)
        {
            closedAt[i] = started.Elapsed;
        }
    }

    private static async Task ClosedAsync(Socket socket)
    {
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private static async Task<List<double>> LatenciesAsync(HttpClient client, int count)
    {
        var ms = new List<double>();
        for (var i = 0; i < count; i++)
        {
            var t = Stopwatch.StartNew();
            using var response = await client.GetAsync($"/healthy/{i}");
            var body = await response.Content.ReadAsStringAsync();
            ms.Add(t.Elapsed.TotalMilliseconds);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith($"method=GET\npath=/healthy/{i}\n", body);
        }
        return ms;
    }

    private static double Median(List<double> values) => Percentile(values, 0.5);

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
    }

    private Task CleanUpAsync(string id, Task<ProcessResult> run) => StopProxyAsync(fx, id, run);

    /// <summary>Kills the proxy if it still runs, waits for its <c>ctr run</c>, removes the container.</summary>
    internal static async Task StopProxyAsync(SharedModeFixture fx, string id, Task<ProcessResult> run)
    {
        if (!run.IsCompleted)
        {
            await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
            await run.WaitAsync(TimeSpan.FromMinutes(1)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        await fx.Containerd.CtrAsync("container", "rm", id);
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
