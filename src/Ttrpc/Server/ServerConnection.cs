using System.Buffers;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Ttrpc.Protocol;
using RpcStatus = Google.Rpc.Status;

namespace Ttrpc;

/// <summary>One accepted connection: parses requests, runs their handlers concurrently, writes responses.</summary>
internal sealed class ServerConnection : FrameStream
{
    private readonly TtrpcServer _server;
    private readonly string _peer;
    private readonly CancellationTokenSource _closed = new();

    public ServerConnection(Socket socket, TtrpcServer server, string peer)
        : base(socket)
    {
        _server = server;
        _peer = peer;
    }

    protected override void OnFrame(in FrameHeader header, in ReadOnlySequence<byte> data)
    {
        if (header.Type != FrameType.Request)
        {
            // Unary only: stray data frames and unknown types have no stream to belong to.
            return;
        }

        if ((header.StreamId & 1) == 0)
        {
            Reply(header.StreamId, StatusMapping.ToRpcStatus(StatusCode.InvalidArgument, "stream id must be odd for client initiated streams"));
            return;
        }

        Request request;
        try
        {
            request = Request.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException e)
        {
            Reply(header.StreamId, StatusMapping.ToRpcStatus(StatusCode.InvalidArgument, $"invalid request: {e.Message}"));
            return;
        }

        _server.CallStarted();
        var call = new ServerCall(this, header.StreamId, request);
        if (_server.Options.InlineHandlers)
        {
            _ = call.RunAsync();
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(call, preferLocal: false);
        }
    }

    protected override void OnOversizedFrame(in FrameHeader header) =>
        Reply(header.StreamId, StatusMapping.ToRpcStatus(
            StatusCode.ResourceExhausted,
            $"message length {header.Length} exceeds maximum message size of {FrameHeader.MaxDataLength}"));

    protected override void OnClosed(Exception? error)
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void Reply(uint streamId, RpcStatus status) =>
        _ = SendResponseAsync(streamId, new Response { Status = status });

    private async Task SendResponseAsync(uint streamId, Response response)
    {
        try
        {
            await SendAsync(streamId, FrameType.Response, FrameFlags.None, response).ConfigureAwait(false);
        }
        catch (MessageTooLargeException e)
        {
            await SendResponseAsync(streamId, new Response { Status = StatusMapping.ToRpcStatus(StatusCode.ResourceExhausted, e.Message) }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The client went away; there is nobody to answer.
        }
    }

    /// <summary>One request in flight: a thread-pool work item so a slow handler never holds up the read loop.</summary>
    private sealed class ServerCall(ServerConnection connection, uint streamId, Request request) : IThreadPoolWorkItem
    {
        public void Execute() => _ = RunAsync();

        public async Task RunAsync()
        {
            TtrpcServer server = connection._server;
            try
            {
                Response response = await InvokeAsync(server).ConfigureAwait(false);
                await connection.SendResponseAsync(streamId, response).ConfigureAwait(false);
            }
            finally
            {
                server.CallFinished();
            }
        }

        private async Task<Response> InvokeAsync(TtrpcServer server)
        {
            ServerMethodHandler? handler = server.Registry.Find(request.Service, request.Method);
            if (handler is null)
            {
                return new Response
                {
                    Status = StatusMapping.ToRpcStatus(StatusCode.Unimplemented, $"{request.Service}/{request.Method} is not supported"),
                };
            }

            CancellationToken closed;
            try
            {
                closed = connection._closed.Token;
            }
            catch (ObjectDisposedException)
            {
                closed = new CancellationToken(canceled: true);
            }

            using var context = new TtrpcServerCallContext(
                handler.FullName,
                connection._peer,
                MetadataConversion.ToMetadata(request.Metadata),
                request.TimeoutNano,
                closed);
            try
            {
                ByteString payload = await handler.HandleAsync(request.Payload, context).ConfigureAwait(false);
                return new Response { Status = StatusMapping.Ok, Payload = payload };
            }
            catch (OperationCanceledException) when (context.IsDeadlineExceeded)
            {
                return new Response { Status = StatusMapping.ToRpcStatus(StatusCode.DeadlineExceeded, "deadline exceeded") };
            }
            catch (OperationCanceledException) when (closed.IsCancellationRequested)
            {
                return new Response { Status = StatusMapping.ToRpcStatus(StatusCode.Cancelled, "connection closed") };
            }
            catch (Exception e)
            {
                return new Response { Status = StatusMapping.FromException(e, server.Options.ExceptionMapper) };
            }
        }
    }
}
