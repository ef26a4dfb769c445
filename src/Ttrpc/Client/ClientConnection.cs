using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Ttrpc.Protocol;

namespace Ttrpc;

/// <summary>
/// One client connection: every call gets the next odd stream id, and responses are matched
/// back to their callers by stream id, so any number of calls share the socket.
/// </summary>
internal sealed class ClientConnection : FrameStream
{
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<Response>> _pending = new();
    private int _lastStreamId = -1;

    public ClientConnection(Socket socket)
        : base(socket)
    {
    }

    public async Task<Response> CallAsync(Request request, CancellationToken ct)
    {
        uint streamId = (uint)Interlocked.Add(ref _lastStreamId, 2);
        var pending = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[streamId] = pending;
        try
        {
            if (IsClosed)
            {
                throw Unavailable();
            }

            try
            {
                await SendAsync(streamId, FrameType.Request, FrameFlags.None, request).ConfigureAwait(false);
            }
            catch (MessageTooLargeException e)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
            {
                Close();
                throw Unavailable();
            }

            if (!ct.CanBeCanceled)
            {
                return await pending.Task.ConfigureAwait(false);
            }

            using (ct.UnsafeRegister(static (state, token) => ((TaskCompletionSource<Response>)state!).TrySetCanceled(token), pending))
            {
                return await pending.Task.ConfigureAwait(false);
            }
        }
        finally
        {
            _pending.TryRemove(streamId, out _);
        }
    }

    protected override void OnFrame(in FrameHeader header, in ReadOnlySequence<byte> data)
    {
        if (header.Type != FrameType.Response || !_pending.TryRemove(header.StreamId, out TaskCompletionSource<Response>? pending))
        {
            return;
        }

        try
        {
            pending.TrySetResult(Response.Parser.ParseFrom(data));
        }
        catch (InvalidProtocolBufferException e)
        {
            pending.TrySetException(new RpcException(new Status(StatusCode.Internal, $"invalid response: {e.Message}")));
        }
    }

    protected override void OnOversizedFrame(in FrameHeader header)
    {
        if (_pending.TryRemove(header.StreamId, out TaskCompletionSource<Response>? pending))
        {
            pending.TrySetException(new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"message length {header.Length} exceeds maximum message size of {FrameHeader.MaxDataLength}")));
        }
    }

    protected override void OnClosed(Exception? error)
    {
        foreach (uint id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out TaskCompletionSource<Response>? pending))
            {
                pending.TrySetException(Unavailable());
            }
        }
    }

    private static RpcException Unavailable() => new(new Status(StatusCode.Unavailable, "ttrpc: connection closed"));
}
