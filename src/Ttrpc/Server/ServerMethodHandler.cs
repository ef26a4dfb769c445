using Google.Protobuf;

namespace Ttrpc;

/// <summary>A registered method, independent of its message types: payload in, payload out.</summary>
internal abstract class ServerMethodHandler(string fullName)
{
    /// <summary>"/service/method", computed once instead of per call.</summary>
    public string FullName { get; } = fullName;

    public abstract Task<ByteString> HandleAsync(ByteString payload, TtrpcServerCallContext context);
}
