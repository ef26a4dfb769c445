namespace Ttrpc;

/// <summary>A message that would not fit in one ttrpc frame (4 MiB); maps to ResourceExhausted.</summary>
public sealed class MessageTooLargeException : Exception
{
    /// <summary>Creates the exception for a message of <paramref name="size"/> bytes.</summary>
    public MessageTooLargeException(long size)
        : base($"message length {size} exceeds maximum message size of {FrameHeader.MaxDataLength}")
    {
        Size = size;
    }

    /// <summary>Encoded size of the rejected message in bytes.</summary>
    public long Size { get; }
}
