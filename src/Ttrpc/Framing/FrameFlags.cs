namespace Ttrpc;

/// <summary>The flags byte of a ttrpc frame header; its meaning depends on the frame type.</summary>
[Flags]
public enum FrameFlags : byte
{
    /// <summary>No flags: on a request, a unary call.</summary>
    None = 0,

    /// <summary>The sender will send no more data on this stream.</summary>
    RemoteClosed = 0x01,

    /// <summary>On a request: the sender will keep sending data frames.</summary>
    RemoteOpen = 0x02,

    /// <summary>On a data frame: the frame carries no data, only flags.</summary>
    NoData = 0x04,
}
