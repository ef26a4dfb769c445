namespace Ttrpc;

/// <summary>What <see cref="FrameReader.TryRead"/> found in the buffer.</summary>
public enum FrameReadResult
{
    /// <summary>Not enough bytes for the next frame yet; read more and call again.</summary>
    Incomplete,

    /// <summary>A whole frame: header and data are set.</summary>
    Frame,

    /// <summary>
    /// A header announcing more data than allowed: only the header is set, and the reader
    /// skips the announced data as it arrives so the connection stays usable.
    /// </summary>
    Oversized,
}
