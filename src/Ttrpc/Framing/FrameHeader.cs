using System.Buffers.Binary;

namespace Ttrpc;

/// <summary>
/// The 10-byte header in front of every ttrpc frame: data length and stream id as
/// big-endian 32-bit integers, then one byte of type and one of flags.
/// </summary>
/// <param name="Length">Number of data bytes after the header.</param>
/// <param name="StreamId">Stream the frame belongs to; odd for client-initiated streams.</param>
/// <param name="Type">Frame type.</param>
/// <param name="Flags">Type-specific flags.</param>
public readonly record struct FrameHeader(uint Length, uint StreamId, FrameType Type, FrameFlags Flags)
{
    /// <summary>Size of the encoded header in bytes.</summary>
    public const int Size = 10;

    /// <summary>The largest data length ttrpc accepts (4 MiB), as containerd's implementation does.</summary>
    public const int MaxDataLength = 4 << 20;

    /// <summary>Decodes a header from the first <see cref="Size"/> bytes of <paramref name="source"/>.</summary>
    public static FrameHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException($"a frame header needs {Size} bytes", nameof(source));
        }

        return new FrameHeader(
            BinaryPrimitives.ReadUInt32BigEndian(source),
            BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            (FrameType)source[8],
            (FrameFlags)source[9]);
    }

    /// <summary>Encodes this header into the first <see cref="Size"/> bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"a frame header needs {Size} bytes", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32BigEndian(destination, Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StreamId);
        destination[8] = (byte)Type;
        destination[9] = (byte)Flags;
    }
}
