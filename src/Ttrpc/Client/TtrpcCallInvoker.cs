using Google.Protobuf;
using Grpc.Core;
using Ttrpc.Protocol;

namespace Ttrpc;

/// <summary>
/// Runs the unary calls of generated gRPC clients over a <see cref="TtrpcChannel"/>: the
/// call's deadline becomes <c>timeout_nano</c>, its headers become ttrpc metadata.
/// </summary>
internal sealed class TtrpcCallInvoker(TtrpcChannel channel) : CallInvoker
{
    // ttrpc has no response headers; every call shares one empty, completed answer.
    private static readonly Task<Metadata> NoHeaders = Task.FromResult(Metadata.Empty);

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        InvokeAsync(method, options, request).GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        Task<TResponse> response = InvokeAsync(method, options, request);
        return new AsyncUnaryCall<TResponse>(
            response,
            NoHeaders,
            () => StatusOf(response),
            static () => [],
            static () => { });
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw Streaming(method.FullName);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw Streaming(method.FullName);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw Streaming(method.FullName);

    private async Task<TResponse> InvokeAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options, TRequest request)
        where TRequest : class
        where TResponse : class
    {
        var envelope = new Request
        {
            Service = method.ServiceName,
            Method = method.Name,
            Payload = PayloadSerializationContext.Serialize(method.RequestMarshaller, request),
        };
        MetadataConversion.AddTo(envelope.Metadata, channel.Options.DefaultMetadata);
        MetadataConversion.AddTo(envelope.Metadata, options.Headers);

        CancellationToken cancel = options.CancellationToken;
        CancellationTokenSource? timeout = null;
        if (options.Deadline is DateTime deadline && deadline != DateTime.MaxValue)
        {
            TimeSpan remaining = deadline.ToUniversalTime() - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, "deadline exceeded"));
            }

            envelope.TimeoutNano = remaining.Ticks * 100;
            timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(remaining);
        }

        Response response;
        try
        {
            CancellationToken ct = timeout?.Token ?? cancel;
            ClientConnection connection = await channel.GetConnectionAsync(ct).ConfigureAwait(false);
            response = await connection.CallAsync(envelope, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled"));
        }
        catch (OperationCanceledException) when (timeout is not null)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "deadline exceeded"));
        }
        finally
        {
            timeout?.Dispose();
        }

        if (response.Status is { Code: not 0 } status)
        {
            throw StatusMapping.ToException(status);
        }

        return PayloadDeserializationContext.Deserialize(method.ResponseMarshaller, response.Payload ?? ByteString.Empty);
    }

    private static Status StatusOf(Task task) => task.Status switch
    {
        TaskStatus.RanToCompletion => Status.DefaultSuccess,
        TaskStatus.Faulted when task.Exception?.InnerException is RpcException rpc => rpc.Status,
        TaskStatus.Faulted => new Status(StatusCode.Unknown, task.Exception?.InnerException?.Message ?? "unknown error"),
        TaskStatus.Canceled => Status.DefaultCancelled,
        _ => throw new InvalidOperationException("the call has not finished"),
    };

    private static RpcException Streaming(string method) =>
        new(new Status(StatusCode.Unimplemented, $"{method}: ttrpc streaming calls are not supported by this client"));
}
