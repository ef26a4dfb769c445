using Google.Protobuf;

namespace Ttrpc;

/// <summary>A registered method, independent of its message types: payload in, payload out.</summary>
internal abstract class ServerMethodHandler
{
    public abstract Task<ByteString> HandleAsync(ByteString payload, TtrpcServerCallContext context);
}
