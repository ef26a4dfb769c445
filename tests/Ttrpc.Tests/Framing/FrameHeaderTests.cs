namespace Ttrpc.Tests.Framing;

public class FrameHeaderTests
{
    [Fact]
    public void Encodes_big_endian_length_and_stream_id_then_type_and_flags()
    {
        var bytes = new byte[FrameHeader.Size];
        new FrameHeader(0x01020304, 0x0A0B0C0D, FrameType.Response, FrameFlags.RemoteClosed).Write(bytes);

        Assert.Equal(new byte[] { 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 2, 1 }, bytes);
    }

    [Fact]
    public void Decodes_what_it_encodes()
    {
        var header = new FrameHeader(4 << 20, uint.MaxValue, FrameType.Data, FrameFlags.RemoteOpen | FrameFlags.NoData);
        var bytes = new byte[FrameHeader.Size];
        header.Write(bytes);

        Assert.Equal(header, FrameHeader.Read(bytes));
    }

    [Fact]
    public void Rejects_short_buffers()
    {
        Assert.Throws<ArgumentException>(() => FrameHeader.Read(new byte[9]));
        Assert.Throws<ArgumentException>(() => default(FrameHeader).Write(new byte[9]));
    }
}
