using System.Buffers;

namespace Ttrpc;

/// <summary>
/// Cuts ttrpc frames out of a byte stream. It copies nothing: frame data is a slice of
/// the caller's buffer, valid until the caller advances past it. One instance per
/// connection, because skipping an oversized frame spans reads.
/// </summary>
public sealed class FrameReader
{
    private readonly uint _maxDataLength;
    private long _bytesToSkip;

    /// <summary>Creates a reader that rejects frames with more than <paramref name="maxDataLength"/> data bytes.</summary>
    public FrameReader(int maxDataLength = FrameHeader.MaxDataLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDataLength);
        _maxDataLength = (uint)maxDataLength;
    }

    /// <summary>True while the reader is still discarding the data of an oversized frame.</summary>
    public bool IsSkipping => _bytesToSkip > 0;

    /// <summary>
    /// Takes the next frame from the front of <paramref name="buffer"/>, which is moved past
    /// everything consumed (a whole frame, or skipped data of an oversized one).
    /// </summary>
    public FrameReadResult TryRead(ref ReadOnlySequence<byte> buffer, out FrameHeader header, out ReadOnlySequence<byte> data)
    {
        header = default;
        data = default;

        if (_bytesToSkip > 0 && !Skip(ref buffer))
        {
            return FrameReadResult.Incomplete;
        }

        if (buffer.Length < FrameHeader.Size)
        {
            return FrameReadResult.Incomplete;
        }

        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= FrameHeader.Size)
        {
            header = FrameHeader.Read(first);
        }
        else
        {
            // The header straddles segments: the only case that copies, and only 10 bytes.
            Span<byte> raw = stackalloc byte[FrameHeader.Size];
            buffer.Slice(0, FrameHeader.Size).CopyTo(raw);
            header = FrameHeader.Read(raw);
        }

        if (header.Length > _maxDataLength)
        {
            buffer = buffer.Slice(FrameHeader.Size);
            _bytesToSkip = header.Length;
            Skip(ref buffer);
            return FrameReadResult.Oversized;
        }

        long total = FrameHeader.Size + (long)header.Length;
        if (buffer.Length < total)
        {
            header = default;
            return FrameReadResult.Incomplete;
        }

        data = buffer.Slice(FrameHeader.Size, header.Length);
        buffer = buffer.Slice(total);
        return FrameReadResult.Frame;
    }

    private bool Skip(ref ReadOnlySequence<byte> buffer)
    {
        long n = Math.Min(_bytesToSkip, buffer.Length);
        buffer = buffer.Slice(n);
        _bytesToSkip -= n;
        return _bytesToSkip == 0;
    }
}
