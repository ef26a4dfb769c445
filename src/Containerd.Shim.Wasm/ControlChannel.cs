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
        using var stream = new FileStream(control, FileAccess.Read, bufferSize: 0);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = reader.ReadToEnd();
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
                return new ShimException((StatusCode)code, rest[(space + 1)..]);
            }
        }
        if (text.Length == 0)
        {
            throw new EndOfStreamException("instance process closed its control pipe without reporting");
        }
        return new ShimException(StatusCode.Internal, $"instance process sent an unreadable report: {text}");
    }

    private static void Send(SafeFileHandle control, string message)
    {
        using var stream = new FileStream(control, FileAccess.Write, bufferSize: 0);
        stream.Write(Encoding.UTF8.GetBytes(message));
    }
}
