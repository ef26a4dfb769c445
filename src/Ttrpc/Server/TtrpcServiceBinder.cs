using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// Receives the methods of a Grpc.Tools-generated service (<c>X.BindService(binder, impl)</c>)
/// and registers them under their full names, so a ttrpc service is implemented by
/// deriving from the generated <c>XBase</c> class.
/// </summary>
internal sealed class TtrpcServiceBinder(ServiceRegistry registry) : ServiceBinderBase
{
    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler)
    {
        if (handler is not null)
        {
            registry.Add(method.ServiceName, method.Name, new UnaryMethodHandler<TRequest, TResponse>(method, handler));
        }
    }

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        registry.Add(method.ServiceName, method.Name, new UnsupportedMethodHandler(method.FullName));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        registry.Add(method.ServiceName, method.Name, new UnsupportedMethodHandler(method.FullName));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        registry.Add(method.ServiceName, method.Name, new UnsupportedMethodHandler(method.FullName));
}
