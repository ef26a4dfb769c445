using Grpc.Core;
using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests.Client;

public class RoundTripTests
{
    [Fact]
    public async Task A_generated_client_calls_a_generated_service()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        EchoResponse response = await client.EchoAsync(new EchoRequest { Text = "hello" });

        Assert.Equal("hello", response.Text);
        Assert.Equal(-1, response.DeadlineSeconds);
    }

    [Fact]
    public async Task Blocking_calls_work_too()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        Assert.Equal("sync", client.Echo(new EchoRequest { Text = "sync" }).Text);
    }

    [Fact]
    public async Task Concurrent_calls_share_one_connection_and_each_gets_its_own_answer()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        // Varying delays make responses come back out of order.
        var calls = Enumerable.Range(0, 1000)
            .Select(i => client.EchoAsync(new EchoRequest { Text = $"call {i}", DelayMs = i % 7 }).ResponseAsync)
            .ToArray();
        EchoResponse[] responses = await Task.WhenAll(calls);

        for (int i = 0; i < responses.Length; i++)
        {
            Assert.Equal($"call {i}", responses[i].Text);
        }

        Assert.Equal(1, server.Server.ConnectionCount);
        Assert.Equal(1000, server.Service.Calls);
    }

    [Fact]
    public async Task Many_channels_call_concurrently()
    {
        await using var server = await EchoServer.StartAsync();
        var channels = Enumerable.Range(0, 8).Select(_ => server.CreateChannel()).ToArray();
        try
        {
            var tasks = channels.SelectMany((c, n) =>
            {
                var client = new Echo.Echo.EchoClient(c.CreateCallInvoker());
                return Enumerable.Range(0, 100).Select(async i => (await client.EchoAsync(new EchoRequest { Text = $"{n}/{i}" })).Text == $"{n}/{i}");
            });

            Assert.All(await Task.WhenAll(tasks), Assert.True);
            Assert.Equal(8, server.Server.ConnectionCount);
        }
        finally
        {
            foreach (var c in channels)
            {
                await c.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Call_metadata_and_channel_metadata_reach_the_handler()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel(new TtrpcChannelOptions
        {
            DefaultMetadata = new Metadata { { "containerd-namespace-ttrpc", "k8s.io" } },
        });
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var ns = await client.EchoAsync(new EchoRequest { MetadataKey = "containerd-namespace-ttrpc" });
        var trace = await client.EchoAsync(
            new EchoRequest { MetadataKey = "traceparent" },
            new Metadata { { "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } });

        Assert.Equal("k8s.io", ns.MetadataValue);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", trace.MetadataValue);
    }

    [Fact]
    public async Task The_deadline_travels_as_timeout_nano_and_the_handler_sees_it()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var response = await client.EchoAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.InRange(response.DeadlineSeconds, 25, 30.5);
    }

    [Fact]
    public async Task A_call_past_its_deadline_fails_with_DeadlineExceeded_and_the_handler_is_cancelled()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            client.EchoAsync(new EchoRequest { DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(200)).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        // The server cancels the handler at the same deadline; nothing stays in flight.
        await WaitUntilAsync(() => server.Server.CallsInFlight == 0, TimeSpan.FromSeconds(5));
        Assert.Equal("after", (await client.EchoAsync(new EchoRequest { Text = "after" })).Text);
    }

    [Fact]
    public async Task The_server_answers_DeadlineExceeded_when_the_handler_overruns_timeout_nano()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);
        var request = new Ttrpc.Protocol.Request
        {
            Service = "ttrpc.testing.Echo",
            Method = "Echo",
            TimeoutNano = 100_000_000,
            Payload = Google.Protobuf.MessageExtensions.ToByteString(new EchoRequest { DelayMs = 10_000 }),
        };

        await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, Google.Protobuf.MessageExtensions.ToByteArray(request)));
        var (header, response) = await raw.ReceiveAsync();

        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)StatusCode.DeadlineExceeded, response.Status.Code);
    }

    [Fact]
    public async Task Cancelling_a_call_fails_it_with_Cancelled()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());
        using var cts = new CancellationTokenSource(100);

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            client.EchoAsync(new EchoRequest { DelayMs = 2_000 }, cancellationToken: cts.Token).ResponseAsync);

        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
    }

    [Fact]
    public async Task An_RpcException_keeps_its_status_and_other_exceptions_become_Unknown()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var notFound = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { FailCode = (int)StatusCode.NotFound }).ResponseAsync);
        var crash = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { Crash = "boom" }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        Assert.Equal("asked to fail with 5", notFound.Status.Detail);
        Assert.Equal(StatusCode.Unknown, crash.StatusCode);
        Assert.Equal("boom", crash.Status.Detail);
    }

    [Fact]
    public async Task The_exception_mapper_decides_first()
    {
        await using var server = await EchoServer.StartAsync(new TtrpcServerOptions
        {
            ExceptionMapper = e => e is InvalidOperationException ? new Status(StatusCode.FailedPrecondition, "mapped: " + e.Message) : null,
        });
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { Crash = "state" }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("mapped: state", e.Status.Detail);
    }

    [Fact]
    public async Task A_response_over_4_MiB_becomes_ResourceExhausted()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { ResponsePadding = FrameHeader.MaxDataLength }).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal("ok", (await client.EchoAsync(new EchoRequest { Text = "ok" })).Text);
    }

    [Fact]
    public async Task A_request_over_4_MiB_is_refused_by_the_client_without_sending()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { Text = new string('x', FrameHeader.MaxDataLength) }).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal(0, server.Service.Calls);
    }

    [Fact]
    public async Task No_server_is_Unavailable()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ttrpc-none-{Guid.NewGuid():N}.sock");
        await using var channel = new TtrpcChannel(path);
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest()).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    [Fact]
    public async Task The_client_reconnects_after_the_server_restarts()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());
        Assert.Equal("before", (await client.EchoAsync(new EchoRequest { Text = "before" })).Text);

        Task<EchoResponse> inFlight = client.EchoAsync(new EchoRequest { DelayMs = 5_000 }).ResponseAsync;
        await WaitUntilAsync(() => server.Server.CallsInFlight == 1, TimeSpan.FromSeconds(5));
        await server.Server.ShutdownAsync(new CancellationTokenSource(100).Token);
        var lost = await Assert.ThrowsAsync<RpcException>(() => inFlight);
        Assert.Equal(StatusCode.Unavailable, lost.StatusCode);

        await server.RestartAsync();

        Assert.Equal("after", (await client.EchoAsync(new EchoRequest { Text = "after" })).Text);
    }

    [Fact]
    public async Task Shutdown_lets_calls_in_flight_finish()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());
        Task<EchoResponse> inFlight = client.EchoAsync(new EchoRequest { Text = "finishing", DelayMs = 300 }).ResponseAsync;
        await WaitUntilAsync(() => server.Server.CallsInFlight == 1, TimeSpan.FromSeconds(5));

        await server.Server.ShutdownAsync();

        Assert.Equal("finishing", (await inFlight).Text);
        Assert.False(File.Exists(server.SocketPath));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition not met in time");
            await Task.Delay(10);
        }
    }
}
