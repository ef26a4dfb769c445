using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace Ttrpc.Benchmarks;

/// <summary>The framing hot path on its own: it must not allocate.</summary>
[MemoryDiagnoser]
public class FramingBenchmarks
{
    private const int Frames = 64;
    private readonly byte[] _stream = new byte[Frames * (FrameHeader.Size + 48)];
    private readonly byte[] _header = new byte[FrameHeader.Size];
    private readonly FrameReader _reader = new();

    /// <summary>Fills a buffer with 64 small frames.</summary>
    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Frames; i++)
        {
            new FrameHeader(48, (uint)(2 * i + 1), FrameType.Request, FrameFlags.None).Write(_stream.AsSpan(i * (FrameHeader.Size + 48)));
        }
    }

    /// <summary>Cuts 64 frames out of one buffer.</summary>
    [Benchmark(OperationsPerInvoke = Frames)]
    public long ReadFrames()
    {
        var buffer = new ReadOnlySequence<byte>(_stream);
        long total = 0;
        while (_reader.TryRead(ref buffer, out FrameHeader header, out ReadOnlySequence<byte> data) == FrameReadResult.Frame)
        {
            total += header.StreamId + data.Length;
        }

        return total;
    }

    /// <summary>Encodes one header.</summary>
    [Benchmark]
    public byte WriteHeader()
    {
        new FrameHeader(48, 7, FrameType.Response, FrameFlags.None).Write(_header);
        return _header[3];
    }
}
