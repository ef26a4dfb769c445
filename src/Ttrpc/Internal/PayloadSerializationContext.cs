using System.Buffers;
using Google.Protobuf;
using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// Lets a generated <see cref="Marshaller{T}"/> serialize a message into exactly one array of
/// exactly the right size, which becomes the payload field of a ttrpc envelope without a copy.
/// </summary>
internal sealed class PayloadSerializationContext : SerializationContext, IBufferWriter<byte>
{
    private byte[] _buffer = [];
    private int _written;

    public override void Complete(byte[] payload)
    {
        _buffer = payload;
        _written = payload.Length;
    }

    public override IBufferWriter<byte> GetBufferWriter() => this;

    // Google.Protobuf's marshallers announce the exact size before writing.
    public override void SetPayloadLength(int payloadLength) => _buffer = payloadLength == 0 ? [] : new byte[payloadLength];

    public override void Complete()
    {
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Serializes <paramref name="value"/> with <paramref name="marshaller"/>.</summary>
    public static ByteString Serialize<T>(Marshaller<T> marshaller, T value)
    {
        var context = new PayloadSerializationContext();
        marshaller.ContextualSerializer(value, context);
        if (context._written == 0)
        {
            return ByteString.Empty;
        }

        return UnsafeByteOperations.UnsafeWrap(context._buffer.AsMemory(0, context._written));
    }

    // Only for marshallers that did not announce a length.
    private void Reserve(int sizeHint)
    {
        int needed = _written + Math.Max(sizeHint, 1);
        if (needed > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(needed, Math.Max(256, _buffer.Length * 2)));
        }
    }
}
