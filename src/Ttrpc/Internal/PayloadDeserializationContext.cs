using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace Ttrpc;

/// <summary>Hands the payload bytes of a ttrpc envelope to a generated <see cref="Marshaller{T}"/>.</summary>
internal sealed class PayloadDeserializationContext(ReadOnlyMemory<byte> payload) : DeserializationContext
{
    public override int PayloadLength => payload.Length;

    public override byte[] PayloadAsNewBuffer() => payload.ToArray();

    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);

    /// <summary>
    /// Deserializes <paramref name="payload"/>; a payload that is not a valid message is the
    /// caller's fault, so it surfaces as InvalidArgument.
    /// </summary>
    public static T Deserialize<T>(Marshaller<T> marshaller, ByteString payload)
    {
        try
        {
            return marshaller.ContextualDeserializer(new PayloadDeserializationContext(payload.Memory));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"invalid payload: {e.Message}"));
        }
    }
}
