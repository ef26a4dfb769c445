using System.Text;
using Containerd.Shimkit;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The one message an instance process sends the shim at Create, on its control pipe: <c>ready</c>, or
/// <c>error &lt;grpc code&gt; &lt;message&gt;</c>. The child closes the pipe right after, so the shim reads to EOF; EOF
/// with no message means the child died before it could say anything.
/// </summary>
internal static class ControlChannel
{
    private const string Ready = "ready";
    private const string Error = "error";

    /// <summary>The most the shim reads of a report; a longer one is an error.</summary>
    internal const int MaxReportBytes = 64 << 10;

    // An error message longer than this is cut (an entrypoint path, a layer list and a cause fit easily).
    private const int MaxMessageLength = 4096;

    /// <summary>Child side: reports that the program is prepared and waits for Start.</summary>
    public static void ReportReady(SafeFileHandle control) => Send(control, Ready);

    /// <summary>Child side: reports why the container cannot run.</summary>
    public static void ReportError(SafeFileHandle control, StatusCode code, string message) =>
        Send(control, $"{Error} {(int)code} {message}");

    /// <summary>
    /// Shim side: blocks until the child reported. Returns null when it was ready, the failure as a
    /// <see cref="ShimException"/> otherwise, or throws <see cref="EndOfStreamException"/> when the child said nothing.
    /// </summary>
    public static ShimException? ReadReport(SafeFileHandle control)
    {
        string text;
        // Disposing the stream closes our end: a child still writing past the bound gets EPIPE instead of blocking.
        using (var stream = new FileStream(control, FileAccess.Read, bufferSize: 0))
        {
            try
            {
                text = Encoding.UTF8.GetString(BoundedRead.ToEnd(stream, MaxReportBytes, "the instance process's report"));
            }
            catch (ReadLimitExceededException)
            {
                return new ShimException(StatusCode.Internal, $"instance process sent a report of more than {MaxReportBytes} bytes on its control pipe");
            }
        }
        if (text == Ready)
        {
            return null;
        }
        if (text.StartsWith(Error + " ", StringComparison.Ordinal))
        {
            var rest = text[(Error.Length + 1)..];
            var space = rest.IndexOf(' ');
            if (space > 0 && int.TryParse(rest[..space], out var code))
            {
                // The child builds its messages from tenant text already made safe; this is the last line of defence.
                return new ShimException((StatusCode)code, UntrustedText.Excerpt(rest[(space + 1)..], MaxMessageLength));
            }
        }
        if (text.Length == 0)
        {
            throw new EndOfStreamException("instance process closed its control pipe without reporting");
        }
        return new ShimException(StatusCode.Internal, $"instance process sent an unreadable report: {UntrustedText.Excerpt(text)}");
    }

    private static void Send(SafeFileHandle control, string message)
    {
        using var stream = new FileStream(control, FileAccess.Write, bufferSize: 0);
        stream.Write(Encoding.UTF8.GetBytes(message));
    }
}
