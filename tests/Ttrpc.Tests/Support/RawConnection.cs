using System.Buffers.Binary;
using System.Net.Sockets;
using Google.Protobuf;
using Ttrpc.Protocol;

namespace Ttrpc.Tests;

/// <summary>A bare socket speaking ttrpc by hand, to send what a well-behaved client never would.</summary>
internal sealed class RawConnection : IDisposable
{
    private readonly Socket _socket;

    private RawConnection(Socket socket) => _socket = socket;

    public Socket Socket => _socket;

    public static async Task<RawConnection> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        return new RawConnection(socket);
    }

    public static byte[] Frame(uint streamId, FrameType type, byte[] data, FrameFlags flags = FrameFlags.None)
    {
        var frame = new byte[FrameHeader.Size + data.Length];
        new FrameHeader((uint)data.Length, streamId, type, flags).Write(frame);
        data.CopyTo(frame, FrameHeader.Size);
        return frame;
    }

    public static byte[] EchoRequest(string text, string service = "ttrpc.testing.Echo", string method = "Echo") =>
        new Request
        {
            Service = service,
            Method = method,
            Payload = new Echo.EchoRequest { Text = text }.ToByteString(),
        }.ToByteArray();

    public async Task SendAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length)
        {
            sent += await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
        }
    }

    /// <summary>Reads one response frame, failing the test if none comes within the timeout.</summary>
    public async Task<(FrameHeader Header, Response Response)> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        byte[] header = new byte[FrameHeader.Size];
        await ReadExactlyAsync(header, cts.Token);
        FrameHeader h = FrameHeader.Read(header);
        byte[] data = new byte[h.Length];
        await ReadExactlyAsync(data, cts.Token);
        Assert.Equal(FrameType.Response, h.Type);
        return (h, Response.Parser.ParseFrom(data));
    }

    /// <summary>True when the server closed the connection (read returns 0) within the timeout.</summary>
    public async Task<bool> IsClosedByPeerAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var buffer = new byte[1];
            return await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public void Dispose() => _socket.Dispose();

    private async Task ReadExactlyAsync(byte[] buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await _socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, ct);
            if (n == 0)
            {
                throw new EndOfStreamException($"peer closed after {read} of {buffer.Length} bytes");
            }

            read += n;
        }
    }
}
