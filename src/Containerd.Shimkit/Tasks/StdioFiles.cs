using System.Runtime.InteropServices;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Tasks;

/// <summary>
/// The container's stdio, opened from the paths containerd sends (usually FIFOs it created). Opening must never
/// block on a missing peer: stdin is opened read-only and non-blocking (then made blocking for the program);
/// stdout and stderr read-write, which counts as a reader so the open returns at once and writes never fail
/// with EPIPE while containerd is not reading yet.
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
        var fd = Libc.Open(path, flags | Libc.O_CLOEXEC, 0);
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
}
