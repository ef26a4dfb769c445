using System.Buffers;

namespace Ttrpc.Tests;

/// <summary>Builds multi-segment sequences, as a pipe hands out after several small reads.</summary>
internal sealed class Segment : ReadOnlySequenceSegment<byte>
{
    public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

    public Segment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
        Next = next;
        return next;
    }

    /// <summary>Cuts <paramref name="bytes"/> at the given offsets into one sequence of many segments.</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, IEnumerable<int> cuts)
    {
        var points = cuts.Where(c => c > 0 && c < bytes.Length).Distinct().Order().Append(bytes.Length).ToList();
        var first = new Segment(bytes.AsMemory(0, points[0]));
        Segment last = first;
        for (int i = 1; i < points.Count; i++)
        {
            last = last.Append(bytes.AsMemory(points[i - 1], points[i] - points[i - 1]));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }
}
