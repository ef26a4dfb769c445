namespace Ttrpc;

/// <summary>The message type byte of a ttrpc frame header.</summary>
public enum FrameType : byte
{
    /// <summary>Opens a stream; the body is a <c>ttrpc.Request</c>.</summary>
    Request = 1,

    /// <summary>Ends a stream; the body is a <c>ttrpc.Response</c>.</summary>
    Response = 2,

    /// <summary>Stream data on an already open stream (streaming RPCs only).</summary>
    Data = 3,
}
