using System.Runtime.InteropServices;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Tasks;

/// <summary>
/// The container's stdio, opened from the paths containerd sends (usually FIFOs it created). Opening must never
/// block on a missing peer: stdin is opened read-only and non-blocking (then made blocking for the program);
/// stdout and stderr read-write, which counts as a reader so the open returns at once and writes never fail
/// with EPIPE while containerd is not reading yet. A <c>file://</c> URI (what <c>ctr run --log-uri file://…</c>
/// sends for stdout and stderr) is a log file, created if missing and appended to.
/// </summary>
internal sealed class StdioFiles : IDisposable
{
    public SafeFileHandle? Stdin { get; private set; }
    public SafeFileHandle? Stdout { get; private set; }
    public SafeFileHandle? Stderr { get; private set; }

    /// <summary>Opens the non-empty paths; on failure closes whatever was opened and throws.</summary>
    public static StdioFiles Open(string stdin, string stdout, string stderr)
    {
        var files = new StdioFiles();
        try
        {
            files.Stdin = OpenOne(stdin, Libc.O_RDONLY | Libc.O_NONBLOCK, "stdin");
            files.Stdout = OpenOne(stdout, Libc.O_RDWR, "stdout");
            files.Stderr = OpenOne(stderr, Libc.O_RDWR, "stderr");
            return files;
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>Gives up ownership: the instance now owns the handles.</summary>
    public void Release()
    {
        Stdin = Stdout = Stderr = null;
    }

    public void Dispose()
    {
        Stdin?.Dispose();
        Stdout?.Dispose();
        Stderr?.Dispose();
        Release();
    }

    private static SafeFileHandle? OpenOne(string path, int flags, string name)
    {
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }
        (path, flags) = ParseUri(path, flags, name);
        var fd = Libc.Open(path, flags | Libc.O_CLOEXEC, 0b110_100_000 /* 0640 */);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new ShimException(errno == Libc.ENOENT ? StatusCode.NotFound : StatusCode.Internal,
                $"open {name} {path}: {Libc.StrError(errno)}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if ((flags & Libc.O_NONBLOCK) != 0)
        {
            // Non-blocking only for the open itself; the program expects ordinary blocking reads.
            var current = Libc.Fcntl(fd, Libc.F_GETFL, 0);
            if (current < 0 || Libc.Fcntl(fd, Libc.F_SETFL, current & ~Libc.O_NONBLOCK) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                handle.Dispose();
                throw new ShimException(StatusCode.Internal, $"make {name} {path} blocking: {Libc.StrError(errno)}");
            }
        }
        return handle;
    }

    /// <summary>
    /// A bare path or <c>fifo://</c> is a FIFO containerd created; <c>file://</c> a log file (stdout/stderr only);
    /// <c>binary://</c> (a logging program) is not supported yet.
    /// </summary>
    private static (string Path, int Flags) ParseUri(string path, int flags, string name)
    {
        const string fifo = "fifo://", file = "file://";
        if (path.StartsWith(fifo, StringComparison.Ordinal))
        {
            return (path[fifo.Length..], flags);
        }
        if (path.StartsWith(file, StringComparison.Ordinal) && name != "stdin")
        {
            var logPath = Uri.UnescapeDataString(path[file.Length..]);
            if (Path.GetDirectoryName(logPath) is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
            }
            return (logPath, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND);
        }
        if (path.Contains("://", StringComparison.Ordinal))
        {
            throw new ShimException(StatusCode.Unimplemented, $"{name} {path}: only FIFO paths and file:// URIs are supported");
        }
        return (path, flags);
    }
}
