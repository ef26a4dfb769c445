using Google.Protobuf;
using Grpc.Core;

namespace Ttrpc;

/// <summary>Adapts a generated unary handler to payload bytes, using the method's own marshallers.</summary>
internal sealed class UnaryMethodHandler<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler)
    : ServerMethodHandler(method.FullName)
    where TRequest : class
    where TResponse : class
{
    public override async Task<ByteString> HandleAsync(ByteString payload, TtrpcServerCallContext context)
    {
        TRequest request = PayloadDeserializationContext.Deserialize(method.RequestMarshaller, payload);
        TResponse response = await handler(request, context).ConfigureAwait(false);
        return PayloadSerializationContext.Serialize(method.ResponseMarshaller, response);
    }
}
