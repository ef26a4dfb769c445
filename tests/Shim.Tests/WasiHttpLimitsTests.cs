using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Containerd.Shim.Wasmtime.Http;
using Containerd.Shimkit;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// The wasi:http server's limits, attacked over real TCP against real components in process: slow-header floods,
/// oversized bodies and header blocks, connections past the cap, a guest that never returns and one whose body never
/// ends.
/// </summary>
public sealed class WasiHttpLimitsTests(ITestOutputHelper output)
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    [Fact]
    public async Task SlowHeaderFloodIsCutOffByTheHeaderTimeoutWhileAnotherServerKeepsAnswering()
    {
        var limits = HttpServerLimits.Default with { HeaderTimeout = TimeSpan.FromSeconds(3) };
        await using var victim = await Start(HttpEchoComponent.Precompiled, limits);
        await using var healthy = await Start(HttpEchoComponent.Precompiled, HttpServerLimits.Default);
        using var client = new HttpClient { BaseAddress = new Uri(healthy.Addresses.Single()), Timeout = TimeSpan.FromSeconds(30) };
        await client.GetStringAsync("/warm");
        var before = await Latencies(client, 40);

        // 300 connections, each sending its request one byte a second: without the timeout they would hold their
        // connections (and Kestrel's buffers) forever.
        const int Slow = 300;
        var endpoint = Endpoint(victim);
        var sockets = new List<Socket>();
        try
        {
            for (var i = 0; i < Slow; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(endpoint);
                sockets.Add(socket);
            }
            var started = Stopwatch.StartNew();
            using var flood = new CancellationTokenSource();
            var closedAt = new TimeSpan?[Slow];
            var trickle = sockets.Select((socket, i) => Trickle(socket, i, closedAt, started, flood.Token)).ToArray();

            // The healthy server is asked all through the flood, until the slow connections are all closed.
            var all = Task.WhenAll(trickle);
            var during = new List<double>();
            while (!all.IsCompleted && started.Elapsed < TimeSpan.FromSeconds(20))
            {
                during.AddRange(await Latencies(client, 5));
                await Task.Delay(20);
            }
            var finished = await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(1)));
            flood.Cancel();
            await all;

            Assert.Same(all, finished);
            Assert.All(closedAt, at => Assert.NotNull(at));
            // Closed by the timeout, not before it (the flood was sending all along).
            Assert.All(closedAt, at => Assert.InRange(at!.Value, limits.HeaderTimeout - TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15)));
            // The victim itself serves again once the flood is cut.
            using var victimClient = new HttpClient { BaseAddress = new Uri(victim.Addresses.Single()), Timeout = TimeSpan.FromSeconds(30) };
            Assert.StartsWith("method=GET\npath=/after\n", await victimClient.GetStringAsync("/after"));
            output.WriteLine($"healthy server, median GET latency: {Median(before):F2} ms without the flood, {Median(during):F2} ms " +
                $"during a flood of {Slow} slow connections ({during.Count} GETs; p90 {Percentile(before, 0.9):F2} / {Percentile(during, 0.9):F2} ms); " +
                $"slow connections closed after {closedAt.Min()!.Value.TotalSeconds:F1}-{closedAt.Max()!.Value.TotalSeconds:F1} s");
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task BodyOverTheLimitGets413DeclaredOrChunked()
    {
        var limits = HttpServerLimits.Default with { MaxBodyBytes = 64 * 1024 };
        await using var server = await Start(HttpEchoComponent.Precompiled, limits);
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(30) };
        var big = new byte[100 * 1024];

        using (var declared = await client.PostAsync("/declared", new ByteArrayContent(big)))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
        }
        // No Content-Length: a chunked body, found too large only while the guest reads it.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/chunked") { Content = new ByteArrayContent(big) };
        request.Headers.TransferEncodingChunked = true;
        using (var chunked = await client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
            Assert.Contains("request body larger than 65536 bytes", await chunked.Content.ReadAsStringAsync());
        }
        // A body within the limit is echoed as before.
        using var small = await client.PostAsync("/small", new StreamContent(new MemoryStream(new byte[60 * 1024])));
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        Assert.Equal(60 * 1024 + "method=POST\npath=/small\nx-echo=\n\n".Length, (await small.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task HeaderBlockOverTheLimitGets431()
    {
        var limits = HttpServerLimits.Default with { MaxHeaderBytes = 8 * 1024, MaxHeaders = 20 };
        await using var server = await Start(HttpEchoComponent.Precompiled, limits);
        var endpoint = Endpoint(server);

        var huge = await RawExchange(endpoint, $"GET /big HTTP/1.1\r\nHost: a\r\nx-big: {new string('a', 16 * 1024)}\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 431 ", huge);
        var many = await RawExchange(endpoint,
            $"GET /many HTTP/1.1\r\nHost: a\r\n{string.Concat(Enumerable.Range(0, 30).Select(i => $"x-h{i}: v\r\n"))}\r\n");
        Assert.StartsWith("HTTP/1.1 431 ", many);
        var fine = await RawExchange(endpoint, "GET /fine HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", fine);
    }

    [Fact]
    public async Task ConnectionsOverTheCapAreClosedWhileExistingOnesKeepWorking()
    {
        const int Cap = 4;
        var limits = HttpServerLimits.Default with { MaxConnections = Cap };
        await using var server = await Start(HttpEchoComponent.Precompiled, limits);
        var connects = new int[Cap];
        var clients = Enumerable.Range(0, Cap).Select(i => new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1,
            ConnectCallback = async (context, ct) =>
            {
                Interlocked.Increment(ref connects[i]);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        })
        { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(30) }).ToList();
        try
        {
            foreach (var client in clients)
            {
                Assert.StartsWith("method=GET\npath=/first\n", await client.GetStringAsync("/first"));
            }

            // One more: accepted by the kernel, closed by Kestrel before it reads a byte.
            using (var extra = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                await extra.ConnectAsync(Endpoint(server));
                await extra.SendAsync("GET /over HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
                Assert.Equal("", await ReadToEnd(extra, TimeSpan.FromSeconds(10)));
            }

            // The four held connections still serve, on the same connections.
            foreach (var client in clients)
            {
                Assert.StartsWith("method=GET\npath=/again\n", await client.GetStringAsync("/again"));
            }
            Assert.All(connects, n => Assert.Equal(1, n));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task StopWithASpinningGuestReturnsWithinTheDrainDeadline()
    {
        var limits = HttpServerLimits.Default with { DrainTimeout = TimeSpan.FromSeconds(2) };
        var server = await Start(HttpLimitsComponent.Precompiled, limits);
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(60) };
        try
        {
            Assert.Equal("ok\n", await client.GetStringAsync("/"));
            var spinning = client.GetAsync("/spin");
            await WaitFor(() => server.RunningGuests == 1, TimeSpan.FromSeconds(10));

            var stop = Stopwatch.StartNew();
            await server.StopAsync(limits.DrainTimeout);
            stop.Stop();
            output.WriteLine($"stop with a spinning guest took {stop.Elapsed.TotalSeconds:F2} s (drain deadline {limits.DrainTimeout.TotalSeconds} s)");

            Assert.InRange(stop.Elapsed, limits.DrainTimeout - TimeSpan.FromMilliseconds(100), limits.DrainTimeout + TimeSpan.FromSeconds(3));
            // The guest's store was interrupted, not left spinning on its thread.
            Assert.Equal(0, server.RunningGuests);
            await Assert.ThrowsAsync<HttpRequestException>(() => spinning);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task EndlessResponseBodyStopsWhenTheClientGoesAway()
    {
        await using var server = await Start(HttpLimitsComponent.Precompiled, HttpServerLimits.Default);
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(60) };
        using (var response = await client.GetAsync("/endless", HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64 * 1024];
            long read = 0;
            while (read < 1024 * 1024)
            {
                var n = await body.ReadAsync(buffer);
                Assert.NotEqual(0, n);
                read += n;
            }
            Assert.Equal(1, server.RunningGuests);
        }
        // Disposing the response mid-body closes the connection: the guest's writes fail and it ends.
        await WaitFor(() => server.RunningGuests == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RequestsPastTheConcurrencyCapWaitThenGet503()
    {
        var limits = HttpServerLimits.Default with { MaxRequests = 1, QueueTimeout = TimeSpan.FromMilliseconds(300), DrainTimeout = TimeSpan.Zero };
        var server = await Start(HttpLimitsComponent.Precompiled, limits);
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(60) };
        try
        {
            var spinning = client.GetAsync("/spin");
            await WaitFor(() => server.RunningGuests == 1, TimeSpan.FromSeconds(10));
            var waited = Stopwatch.StartNew();
            using var refused = await client.GetAsync("/queued");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.True(waited.Elapsed >= TimeSpan.FromMilliseconds(250), $"answered after {waited.Elapsed}");
            Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
            await server.StopAsync(limits.DrainTimeout);
            await Assert.ThrowsAsync<HttpRequestException>(() => spinning);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public void LimitsAreReadFromTheEnvironmentWithDefaults()
    {
        var none = HttpServerLimits.FromLookup(_ => null);
        Assert.Equal(HttpServerLimits.Default, none);
        Assert.Equal(1024, none.MaxConnections);
        Assert.Equal(64 * 1024, none.MaxHeaderBytes);
        Assert.Equal(100, none.MaxHeaders);
        Assert.Equal(16 * 1024 * 1024, none.MaxBodyBytes);
        Assert.Equal(TimeSpan.FromSeconds(10), none.HeaderTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), none.DrainTimeout);

        var set = new Dictionary<string, string>
        {
            [HttpServerLimits.MaxConnectionsVariable] = "50",
            [HttpServerLimits.MaxBodyBytesVariable] = "1M",
            [HttpServerLimits.HeaderTimeoutVariable] = "500ms",
            [HttpServerLimits.DrainTimeoutVariable] = "2.5s",
            [HttpServerLimits.QueueTimeoutVariable] = "0",
        };
        var limits = HttpServerLimits.FromLookup(set.GetValueOrDefault);
        Assert.Equal(50, limits.MaxConnections);
        Assert.Equal(1024 * 1024, limits.MaxBodyBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(500), limits.HeaderTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2.5), limits.DrainTimeout);
        Assert.Equal(TimeSpan.Zero, limits.QueueTimeout);
    }

    [Theory]
    [InlineData(HttpServerLimits.MaxConnectionsVariable, "0")]
    [InlineData(HttpServerLimits.MaxConnectionsVariable, "many")]
    [InlineData(HttpServerLimits.MaxBodyBytesVariable, "16Q")]
    [InlineData(HttpServerLimits.HeaderTimeoutVariable, "0")]
    [InlineData(HttpServerLimits.HeaderTimeoutVariable, "-1")]
    [InlineData(HttpServerLimits.DrainTimeoutVariable, "5m")]
    public void ABadValueIsRefusedNamingTheVariable(string variable, string value)
    {
        var e = Assert.Throws<ShimException>(() => HttpServerLimits.FromLookup(name => name == variable ? value : null));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, e.Code);
        Assert.StartsWith($"{variable}={value}: ", e.Message);
    }

    private static async Task<WasiHttpServer> Start(byte[] precompiled, HttpServerLimits limits) =>
        await WasiHttpServer.StartWithLimitsAsync(precompiled, AnyLoopback, limits, precompiled: true, CancellationToken.None);

    private static IPEndPoint Endpoint(WasiHttpServer server) => IPEndPoint.Parse(new Uri(server.Addresses.Single()).Authority);

    /// <summary>Sends one byte of a request a second until the server closes the connection; records when.</summary>
    private static async Task Trickle(Socket socket, int i, TimeSpan?[] closedAt, Stopwatch started, CancellationToken stop)
    {
        var request = Encoding.ASCII.GetBytes($"GET /slow/{i} HTTP/1.1\r\nHost: a\r\nx-slow: {new string('s', 200)}\r\n\r\n");
        var closed = ReadToEnd(socket, Timeout.InfiniteTimeSpan);
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
            if (await Task.WhenAny(closed, Task.Delay(TimeSpan.FromSeconds(1), stop).ContinueWith(_ => { })) == closed)
            {
                break;
            }
        }
        if (closed.IsCompleted)
        {
            closedAt[i] = started.Elapsed;
        }
    }

    /// <summary>Everything the peer sends until it closes (a reset counts as closed).</summary>
    private static async Task<string> ReadToEnd(Socket socket, TimeSpan limit)
    {
        using var timeout = limit == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(limit);
        var text = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (SocketException)
        {
        }
        return text.ToString();
    }

    /// <summary>One raw request on a fresh connection; the answer's text as far as the server sent it.</summary>
    private static async Task<string> RawExchange(IPEndPoint endpoint, string request)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint);
        // No half-close after the request: Kestrel takes a client's FIN for it going away and aborts the request.
        await socket.SendAsync(Encoding.ASCII.GetBytes(request));
        return await ReadToEnd(socket, TimeSpan.FromSeconds(30));
    }

    private static async Task<List<double>> Latencies(HttpClient client, int count)
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

    private static async Task WaitFor(Func<bool> condition, TimeSpan limit)
    {
        var until = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(until.Elapsed < limit, $"not reached within {limit}");
            await Task.Delay(50);
        }
    }
}
