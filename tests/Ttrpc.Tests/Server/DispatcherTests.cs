using Google.Protobuf;
using Grpc.Core;
using Ttrpc.Protocol;
using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests.Server;

public class DispatcherTests
{
    [Fact]
    public async Task Routes_by_service_and_method_and_answers_on_the_request_stream_id()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);

        await raw.SendAsync(RawConnection.Frame(7, FrameType.Request, RawConnection.EchoRequest("routed")));
        var (header, response) = await raw.ReceiveAsync();

        Assert.Equal(7u, header.StreamId);
        Assert.Equal(FrameFlags.None, header.Flags);
        Assert.Equal(0, response.Status.Code);
        Assert.Equal("routed", EchoResponse.Parser.ParseFrom(response.Payload).Text);
    }

    [Theory]
    [InlineData("ttrpc.testing.Nope", "Echo")]
    [InlineData("ttrpc.testing.Echo", "Nope")]
    public async Task An_unknown_service_or_method_is_Unimplemented(string service, string method)
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);

        await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, RawConnection.EchoRequest("x", service, method)));
        var (_, response) = await raw.ReceiveAsync();

        Assert.Equal((int)StatusCode.Unimplemented, response.Status.Code);
        Assert.Equal($"{service}/{method} is not supported", response.Status.Message);
    }

    [Fact]
    public async Task An_envelope_that_is_not_protobuf_is_InvalidArgument()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);

        await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]));
        var (header, response) = await raw.ReceiveAsync();

        Assert.Equal(1u, header.StreamId);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
    }

    [Fact]
    public async Task A_method_payload_that_is_not_protobuf_is_InvalidArgument()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);
        var request = new Request { Service = "ttrpc.testing.Echo", Method = "Echo", Payload = ByteString.CopyFrom(0x0A, 0xFF, 0x01) };

        await raw.SendAsync(RawConnection.Frame(1, FrameType.Request, request.ToByteArray()));
        var (_, response) = await raw.ReceiveAsync();

        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
        Assert.Equal(0, server.Service.Calls);
    }

    [Fact]
    public async Task An_even_stream_id_is_refused()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);

        await raw.SendAsync(RawConnection.Frame(2, FrameType.Request, RawConnection.EchoRequest("x")));
        var (header, response) = await raw.ReceiveAsync();

        Assert.Equal(2u, header.StreamId);
        Assert.Equal((int)StatusCode.InvalidArgument, response.Status.Code);
    }

    [Fact]
    public async Task Data_and_unknown_frame_types_are_ignored_and_the_connection_carries_on()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);

        await raw.SendAsync([
            .. RawConnection.Frame(1, FrameType.Data, [1, 2, 3]),
            .. RawConnection.Frame(3, (FrameType)0x42, [4, 5]),
            .. RawConnection.Frame(5, FrameType.Request, RawConnection.EchoRequest("still here")),
        ]);
        var (header, response) = await raw.ReceiveAsync();

        Assert.Equal(5u, header.StreamId);
        Assert.Equal("still here", EchoResponse.Parser.ParseFrom(response.Payload).Text);
    }

    [Fact]
    public async Task Pipelined_requests_in_one_write_all_get_answers()
    {
        await using var server = await EchoServer.StartAsync();
        using var raw = await RawConnection.ConnectAsync(server.SocketPath);
        byte[] batch = [.. Enumerable.Range(0, 50).SelectMany(i => RawConnection.Frame((uint)(2 * i + 1), FrameType.Request, RawConnection.EchoRequest($"#{i}")))];

        await raw.SendAsync(batch);
        var answers = new Dictionary<uint, string>();
        for (int i = 0; i < 50; i++)
        {
            var (header, response) = await raw.ReceiveAsync();
            answers[header.StreamId] = EchoResponse.Parser.ParseFrom(response.Payload).Text;
        }

        for (int i = 0; i < 50; i++)
        {
            Assert.Equal($"#{i}", answers[(uint)(2 * i + 1)]);
        }
    }

    [Fact]
    public async Task Registering_a_method_twice_is_an_error()
    {
        await using var server = new TtrpcServer();
        Echo.Echo.BindService(server.Binder, new EchoService());

        Assert.Throws<InvalidOperationException>(() => Echo.Echo.BindService(server.Binder, new EchoService()));
    }
}
