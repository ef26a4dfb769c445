using Grpc.Core;
using Ttrpc.Tests.Client;
using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests.Robustness;

/// <summary>Bad input never takes the server down, and leaves nothing behind.</summary>
[Collection(ResourceCountingCollection.Name)]
public class BadInputTests
{
    [Fact]
    public async Task A_frame_over_4_MiB_is_answered_with_ResourceExhausted_and_the_connection_keeps_working()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);
        var big = new byte[FrameHeader.MaxDataLength + 1];

        await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, big));
        var (header, response) = await raw.ReceiveAsync();
        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)StatusCode.ResourceExhausted, response.Status.Code);

        await raw.SendAsync(RawConnection.Frame(3, FrameType.Request, RawConnection.EchoRequest("next")));
        var (next, answer) = await raw.ReceiveAsync();
        Assert.Equal(3u, next.StreamId);
        Assert.Equal("next", EchoResponse.Parser.ParseFrom(answer.Payload).Text);
    }

    [Fact]
    public async Task Garbage_bytes_do_not_take_the_server_down()
    {
        await using var server = await EchoServer.StartAsync();
        var random = new Random(42);
        for (int i = 0; i < 20; i++)
        {
            using var raw = await RawConnection.ConnectAsync(server.SocketPath);
            var garbage = new byte[random.Next(1, 5000)];
            random.NextBytes(garbage);
            await raw.SendAsync(garbage);
        }

        await AssertServesAsync(server);
    }

    [Fact]
    public async Task A_client_disconnecting_mid_frame_does_not_disturb_others()
    {
        await using var server = await EchoServer.StartAsync();
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());
        Task<EchoResponse> other = client.EchoAsync(new EchoRequest { Text = "other", DelayMs = 200 }).ResponseAsync;

        using (var raw = await RawConnection.ConnectAsync(server.SocketPath))
        {
            byte[] frame = RawConnection.Frame(1, FrameType.Request, RawConnection.EchoRequest("cut"));
            await raw.SendAsync(frame[..(frame.Length / 2)]);
        }

        using (var raw = await RawConnection.ConnectAsync(server.SocketPath))
        {
            await raw.SendAsync(new byte[] { 0, 0, 0 });
        }

        Assert.Equal("other", (await other).Text);
        await AssertServesAsync(server);
    }

    [Fact]
    public async Task A_client_disconnecting_while_its_call_runs_leaves_the_server_clean()
    {
        await using var server = await EchoServer.StartAsync();
        using (var raw = await RawConnection.ConnectAsync(server.SocketPath))
        {
            var request = new Ttrpc.Protocol.Request
            {
                Service = "ttrpc.testing.Echo",
                Method = "Echo",
                Payload = Google.Protobuf.MessageExtensions.ToByteString(new EchoRequest { DelayMs = 5_000 }),
            };
            await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, Google.Protobuf.MessageExtensions.ToByteArray(request)));
            await RoundTripTests.WaitUntilAsync(() => server.Server.CallsInFlight == 1, TimeSpan.FromSeconds(5));
        }

        // The connection's close cancels the handler.
        await RoundTripTests.WaitUntilAsync(() => server.Server.CallsInFlight == 0 && server.Server.ConnectionCount == 0, TimeSpan.FromSeconds(5));
        await AssertServesAsync(server);
    }

    [Fact]
    public async Task A_thousand_connections_opened_and_dropped_leak_no_descriptors_or_threads()
    {
        await using var server = await EchoServer.StartAsync();
        await AssertServesAsync(server);
        await Settle();
        int fdsBefore = OpenDescriptors();
        int threadsBefore = Threads();

        for (int batch = 0; batch < 10; batch++)
        {
            var sockets = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => RawConnection.ConnectAsync(server.SocketPath)));
            // Half of them send a partial frame before going away.
            for (int i = 0; i < sockets.Length; i += 2)
            {
                await sockets[i].SendAsync([0, 0, 0, 20, 0, 0, 0, 1, 1]);
            }

            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }

        await RoundTripTests.WaitUntilAsync(() => server.Server.ConnectionCount == 0, TimeSpan.FromSeconds(20));
        await AssertServesAsync(server);
        await Settle();

        // The thread pool may have injected workers during the burst (more so on a busy machine);
        // idle workers retire after about 20 s, so give counts that long to come back.
        var until = DateTime.UtcNow.AddSeconds(30);
        while ((OpenDescriptors() > fdsBefore + 5 || Threads() > threadsBefore + 8) && DateTime.UtcNow < until)
        {
            await Task.Delay(500);
        }

        Assert.InRange(OpenDescriptors(), 0, fdsBefore + 5);
        Assert.InRange(Threads(), 0, threadsBefore + 8);
    }

    private static async Task AssertServesAsync(EchoServer server)
    {
        await using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel.CreateCallInvoker());
        Assert.Equal("alive", (await client.EchoAsync(new EchoRequest { Text = "alive" }, deadline: DateTime.UtcNow.AddSeconds(10))).Text);
    }

    private static async Task Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        await Task.Delay(200);
    }

    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    private static int Threads() => Directory.GetDirectories("/proc/self/task").Length;
}
