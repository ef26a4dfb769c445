using Google.Protobuf;
using Grpc.Core;

namespace Ttrpc;

/// <summary>Stands in for a streaming method: this server speaks unary ttrpc only.</summary>
internal sealed class UnsupportedMethodHandler(string fullName) : ServerMethodHandler(fullName)
{
    public override Task<ByteString> HandleAsync(ByteString payload, TtrpcServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, $"{FullName}: streaming is not supported"));
}
