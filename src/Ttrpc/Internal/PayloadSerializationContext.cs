using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// Lets a generated <see cref="Marshaller{T}"/> serialize a message into bytes that become the
/// payload field of a ttrpc envelope without another copy.
/// </summary>
internal sealed class PayloadSerializationContext : SerializationContext
{
    private ArrayBufferWriter<byte>? _buffer;
    private byte[]? _complete;

    public override void Complete(byte[] payload) => _complete = payload;

    public override IBufferWriter<byte> GetBufferWriter() => _buffer ??= new ArrayBufferWriter<byte>(256);

    public override void SetPayloadLength(int payloadLength)
    {
        _buffer ??= new ArrayBufferWriter<byte>(Math.Max(payloadLength, 1));
    }

    public override void Complete()
    {
    }

    /// <summary>The serialized bytes, wrapped without copying.</summary>
    public ByteString ToByteString()
    {
        if (_complete is not null)
        {
            return UnsafeByteOperations.UnsafeWrap(_complete);
        }

        return _buffer is null ? ByteString.Empty : UnsafeByteOperations.UnsafeWrap(_buffer.WrittenMemory);
    }

    /// <summary>Serializes <paramref name="value"/> with <paramref name="marshaller"/>.</summary>
    public static ByteString Serialize<T>(Marshaller<T> marshaller, T value)
    {
        var context = new PayloadSerializationContext();
        marshaller.ContextualSerializer(value, context);
        return context.ToByteString();
    }
}
