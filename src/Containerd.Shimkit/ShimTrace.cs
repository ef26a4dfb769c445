using System.Globalization;
using System.Text;

namespace Containerd.Shimkit;

/// <summary>
/// An opt-in timeline of a container's start for finding where the time goes: with <see cref="Variable"/> set to a
/// file, every shim process (start, server, instance) appends one line per mark, <c>&lt;unix seconds.µs&gt; &lt;pid&gt;
/// &lt;what&gt;</c>, in one append-mode write, so the processes of one <c>ctr run</c> interleave in time order. Off (one
/// null check per mark) unless the variable is set in containerd's environment. bench/warm-start/timeline.sh reads it.
/// </summary>
public static class ShimTrace
{
    /// <summary>The environment variable naming the trace file.</summary>
    public const string Variable = "RUNWASI_DOTNET_TRACE";

    private static readonly string? File = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } path ? path : null;
    private static readonly Lock Gate = new();
    // Opened at the first mark and kept: an instance process goes on marking after it pivoted into its rootfs, where
    // the path no longer resolves.
    private static FileStream? _stream;

    /// <summary>Whether marks are written.</summary>
    public static bool Enabled => File is not null;

    /// <summary>Appends a mark, when tracing is on; never throws.</summary>
    public static void Mark(string what)
    {
        if (File is not { } path)
        {
            return;
        }
        var micros = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{micros / 1_000_000}.{micros % 1_000_000:D6} {Environment.ProcessId} {what}\n");
        try
        {
            lock (Gate)
            {
                _stream ??= OpenAppending(path);
                _stream.Write(Encoding.UTF8.GetBytes(line));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A trace must never change what the shim does.
        }
    }

    // O_APPEND, not FileMode.Append: .NET's append mode only seeks to the end once and then writes at its own offset,
    // so a process that keeps the file open overwrote the lines other processes appended meanwhile. With O_APPEND the
    // kernel puts every write at the end, even .NET's positional ones.
    private static FileStream OpenAppending(string path)
    {
        var fd = Libc.Open(path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC, 0b110_100_100);
        if (fd < 0)
        {
            throw new IOException($"open {path}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
    }
}
