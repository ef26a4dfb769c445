using System.Buffers;

namespace Ttrpc.Tests.Framing;

public class FrameReaderTests
{
    private static byte[] Frame(uint streamId, int length, FrameType type = FrameType.Request, byte fill = 0xAB) =>
        Support(streamId, type, Enumerable.Repeat(fill, length).ToArray());

    private static byte[] Support(uint streamId, FrameType type, byte[] data) => RawConnection.Frame(streamId, type, data);

    /// <summary>Feeds <paramref name="stream"/> to a reader the way a pipe does: growing buffers, consumed prefix dropped.</summary>
    private static List<(FrameReadResult Result, FrameHeader Header, byte[] Data)> ReadAll(byte[] stream, IEnumerable<int> readSizes, FrameReader? reader = null)
    {
        reader ??= new FrameReader();
        var results = new List<(FrameReadResult, FrameHeader, byte[])>();
        int received = 0, consumed = 0;
        using IEnumerator<int> sizes = readSizes.GetEnumerator();
        while (received < stream.Length)
        {
            int n = sizes.MoveNext() ? Math.Max(1, sizes.Current) : stream.Length - received;
            received = Math.Min(stream.Length, received + n);
            var buffer = new ReadOnlySequence<byte>(stream, consumed, received - consumed);
            while (true)
            {
                FrameReadResult r = reader.TryRead(ref buffer, out FrameHeader header, out ReadOnlySequence<byte> data);
                if (r == FrameReadResult.Incomplete)
                {
                    break;
                }

                results.Add((r, header, data.ToArray()));
            }

            consumed = received - (int)buffer.Length;
        }

        return results;
    }

    [Fact]
    public void Many_frames_in_one_read_come_out_in_order()
    {
        byte[] stream = [.. Frame(1, 0), .. Frame(3, 5), .. Frame(5, 100, FrameType.Response), .. Frame(7, 1, FrameType.Data)];

        var frames = ReadAll(stream, [stream.Length]);

        Assert.Equal([1u, 3u, 5u, 7u], frames.Select(f => f.Header.StreamId));
        Assert.Equal([0, 5, 100, 1], frames.Select(f => f.Data.Length));
        Assert.Equal(FrameType.Data, frames[3].Header.Type);
        Assert.All(frames, f => Assert.Equal(FrameReadResult.Frame, f.Result));
    }

    [Fact]
    public void A_frame_split_byte_by_byte_is_reassembled()
    {
        byte[] data = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        byte[] stream = Support(9, FrameType.Request, data);

        var frames = ReadAll(stream, Enumerable.Repeat(1, stream.Length));

        var frame = Assert.Single(frames);
        Assert.Equal(data, frame.Data);
        Assert.Equal(9u, frame.Header.StreamId);
    }

    [Fact]
    public void Multi_segment_buffers_are_read_without_copying_into_one()
    {
        byte[] stream = [.. Frame(1, 40), .. Frame(3, 7)];
        ReadOnlySequence<byte> buffer = Segment.Split(stream, [3, 11, 25, 50, 51]);
        var reader = new FrameReader();

        Assert.Equal(FrameReadResult.Frame, reader.TryRead(ref buffer, out FrameHeader first, out ReadOnlySequence<byte> firstData));
        Assert.False(firstData.IsSingleSegment);
        Assert.Equal(40, firstData.Length);
        Assert.Equal(1u, first.StreamId);
        Assert.Equal(FrameReadResult.Frame, reader.TryRead(ref buffer, out FrameHeader second, out _));
        Assert.Equal(3u, second.StreamId);
        Assert.True(buffer.IsEmpty);
    }

    [Fact]
    public void Exactly_the_maximum_is_a_frame()
    {
        byte[] stream = Frame(1, FrameHeader.MaxDataLength);

        var frame = Assert.Single(ReadAll(stream, [65536, 1 << 20]));

        Assert.Equal(FrameReadResult.Frame, frame.Result);
        Assert.Equal(FrameHeader.MaxDataLength, frame.Data.Length);
    }

    [Fact]
    public void One_byte_over_the_maximum_is_skipped_across_reads_and_the_next_frame_survives()
    {
        byte[] stream = [.. Frame(1, FrameHeader.MaxDataLength + 1), .. Frame(3, 4)];

        var frames = ReadAll(stream, Enumerable.Repeat(100_000, 100));

        Assert.Equal(2, frames.Count);
        Assert.Equal(FrameReadResult.Oversized, frames[0].Result);
        Assert.Equal(1u, frames[0].Header.StreamId);
        Assert.Equal((uint)FrameHeader.MaxDataLength + 1, frames[0].Header.Length);
        Assert.Equal(FrameReadResult.Frame, frames[1].Result);
        Assert.Equal(3u, frames[1].Header.StreamId);
    }

    [Fact]
    public void A_header_with_the_reserved_first_byte_set_is_oversized()
    {
        // A length of 0x01000000 or more cannot be valid: ttrpc reserves the first byte.
        var stream = new byte[FrameHeader.Size];
        new FrameHeader(0xFF000010, 1, FrameType.Request, FrameFlags.None).Write(stream);
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>(stream);

        Assert.Equal(FrameReadResult.Oversized, reader.TryRead(ref buffer, out _, out _));
        Assert.True(reader.IsSkipping);
    }

    [Fact]
    public void Unknown_types_are_framed_like_any_other_and_left_to_the_dispatcher()
    {
        byte[] stream = [.. Support(1, (FrameType)0x7F, [1, 2, 3]), .. Frame(3, 0)];

        var frames = ReadAll(stream, [stream.Length]);

        Assert.Equal((FrameType)0x7F, frames[0].Header.Type);
        Assert.Equal(3u, frames[1].Header.StreamId);
    }

    [Fact]
    public void A_truncated_stream_yields_no_partial_frame()
    {
        byte[] stream = Frame(1, 50);
        var reader = new FrameReader();
        for (int len = 0; len < stream.Length; len++)
        {
            var buffer = new ReadOnlySequence<byte>(stream, 0, len);
            Assert.Equal(FrameReadResult.Incomplete, reader.TryRead(ref buffer, out _, out _));
            Assert.Equal(len, buffer.Length);
        }
    }

    [Fact]
    public void Random_frames_under_random_splits_round_trip()
    {
        // Property: whatever the read sizes, the same frames come out in the same order.
        for (int seed = 0; seed < 200; seed++)
        {
            var random = new Random(seed);
            var expected = new List<(uint Id, FrameType Type, byte[] Data)>();
            var stream = new List<byte>();
            int count = random.Next(1, 30);
            for (int i = 0; i < count; i++)
            {
                var data = new byte[random.Next(0, random.Next(2) == 0 ? 20 : 5000)];
                random.NextBytes(data);
                var type = (FrameType)random.Next(1, 4);
                uint id = (uint)(i * 2 + 1);
                expected.Add((id, type, data));
                stream.AddRange(Support(id, type, data));
            }

            var reads = Enumerable.Range(0, 1000).Select(_ => random.Next(1, random.Next(2) == 0 ? 12 : 3000));
            var frames = ReadAll([.. stream], reads);

            Assert.Equal(expected.Count, frames.Count);
            for (int i = 0; i < count; i++)
            {
                Assert.Equal(expected[i].Id, frames[i].Header.StreamId);
                Assert.Equal(expected[i].Type, frames[i].Header.Type);
                Assert.Equal(expected[i].Data, frames[i].Data);
            }
        }
    }
}
