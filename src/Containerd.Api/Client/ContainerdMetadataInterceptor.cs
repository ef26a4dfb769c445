using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Containerd.Api.Client;

/// <summary>
/// Adds the namespace and, when set, the lease header to every outgoing call.
/// Headers the caller already put on a call win, which is how a single call
/// overrides the client's default namespace.
/// </summary>
internal sealed class ContainerdMetadataInterceptor : Interceptor
{
    private readonly string _namespace;
    private readonly string? _lease;

    public ContainerdMetadataInterceptor(string @namespace, string? lease)
    {
        _namespace = @namespace;
        _lease = lease;
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context,
        AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context,
        AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    private ClientInterceptorContext<TRequest, TResponse> WithHeaders<TRequest, TResponse>(
        ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class
        where TResponse : class
    {
        // Copy rather than mutate: callers may reuse one Metadata instance across calls.
        var headers = new Metadata();
        if (context.Options.Headers is { } given)
        {
            foreach (var entry in given)
            {
                headers.Add(entry);
            }
        }

        if (headers.Get(ContainerdMetadata.NamespaceHeader) is null)
        {
            headers.Add(ContainerdMetadata.NamespaceHeader, _namespace);
        }

        if (_lease is not null && headers.Get(ContainerdMetadata.LeaseHeader) is null)
        {
            headers.Add(ContainerdMetadata.LeaseHeader, _lease);
        }

        return new ClientInterceptorContext<TRequest, TResponse>(
            context.Method, context.Host, context.Options.WithHeaders(headers));
    }
}
