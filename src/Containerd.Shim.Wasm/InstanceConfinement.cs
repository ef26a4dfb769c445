using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The instance process's last step out of the host: once the engine, the module, its compiled code and the
/// preopened folders are loaded, the process pivots into the container's rootfs, after which every path it opens is
/// the container's. The pivot is made by a helper the native constructor forked while it still had the privilege
/// (<c>native/instance_setup.c</c>, <c>pivot_helper</c>): the instance process itself already runs with the
/// container's identity and capabilities, on every thread. pivot_root moves the root of every process of the mount
/// namespace whose root was the old one, so the helper's pivot is the instance's.
/// </summary>
internal static unsafe partial class InstanceConfinement
{
    /// <summary>The instance process's end of the helper's socket, placed there by the constructor.</summary>
    public const int PivotFd = 9;

    private const int F_GETFD = 1;
    private const int EINTR = 4;
    private const int MaxReply = 512;

    /// <summary>Whether the constructor left a pivot helper (it does whenever it applied a setup plan).</summary>
    public static bool HasHelper => fcntl(PivotFd, F_GETFD) >= 0;

    /// <summary>
    /// Asks the helper to pivot, waits for its answer and reaps it, then checks that no descriptor of a host folder
    /// survived (one would lead back out with <c>openat(fd, "..")</c>).
    /// </summary>
    /// <exception cref="ShimException">The helper failed or died, or a host folder is still open.</exception>
    public static void EnterRootfs()
    {
        string reply;
        try
        {
            byte go = (byte)'p';
            if (write(PivotFd, &go, 1) != 1)
            {
                throw new ShimException(StatusCode.Internal,
                    $"instance setup: the pivot helper: {Sys.Error(Marshal.GetLastPInvokeError())}");
            }
            var buffer = stackalloc byte[MaxReply];
            var length = 0;
            nint n;
            // The helper answers once and exits: read to EOF, bounded.
            while (length < MaxReply && ((n = read(PivotFd, buffer + length, MaxReply - length)) > 0
                || (n < 0 && Marshal.GetLastPInvokeError() == EINTR)))
            {
                length += (int)Math.Max(n, 0);
            }
            reply = Encoding.UTF8.GetString(buffer, length);
        }
        finally
        {
            Sys.Close(PivotFd);
        }
        var space = reply.IndexOf(' ');
        if (space <= 0 || !int.TryParse(reply.AsSpan(0, space), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            throw new ShimException(StatusCode.Internal, "instance setup: the pivot helper died without an answer");
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && Marshal.GetLastPInvokeError() == EINTR)
        {
        }
        var answer = reply[(space + 1)..];
        if (answer != "ok")
        {
            throw answer.StartsWith("error ", StringComparison.Ordinal)
                && answer.AsSpan(6).IndexOf(' ') is var end and > 0
                && int.TryParse(answer.AsSpan(6, end), NumberStyles.None, CultureInfo.InvariantCulture, out var code)
                ? new ShimException((StatusCode)code, answer[(6 + end + 1)..])
                : new ShimException(StatusCode.Internal, "instance setup: the pivot helper's answer is unreadable");
        }
        CheckNoHostFolderOpen();
    }

    // Every open descriptor that is a folder must lie inside the new root: climbing its ".." must end at our "/".
    // A folder of the detached host tree ends at that tree's own top instead.
    private static void CheckNoHostFolderOpen()
    {
        var root = Identity(Sys.AT_FDCWD, "/");
        var limit = Math.Min(OpenFileLimit(), 65536);
        for (var fd = 0; fd < limit; fd++)
        {
            if (fcntl(fd, F_GETFD) < 0 || (Sys.ModeOf(fd) & Sys.S_IFMT) != Sys.S_IFDIR)
            {
                continue;
            }
            if (TopOf(fd) != root)
            {
                throw new ShimException(StatusCode.Internal,
                    $"instance setup: descriptor {fd} is a folder outside the container after the pivot; refusing to run");
            }
        }
    }

    private static (ulong Dev, ulong Ino) TopOf(int fd)
    {
        var current = Sys.Openat(fd, ".", Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
        try
        {
            var here = Identity(current, "");
            for (var depth = 0; depth < 4096; depth++)
            {
                var parent = Sys.Openat(current, "..", Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
                if (parent < 0)
                {
                    break;
                }
                var up = Identity(parent, "");
                Sys.Close(current);
                current = parent;
                if (up == here)
                {
                    break;
                }
                here = up;
            }
            return here;
        }
        finally
        {
            Sys.Close(current);
        }
    }

    private static (ulong Dev, ulong Ino) Identity(int dirfd, string path)
    {
        Sys.Statx s;
        var flags = path.Length == 0 ? Sys.AT_EMPTY_PATH : 0;
        if (Sys.StatxFd(dirfd, path, flags, Sys.STATX_INO, &s) != 0)
        {
            return (ulong.MaxValue, ulong.MaxValue);
        }
        return (((ulong)s.DevMajor << 32) | s.DevMinor, s.Ino);
    }

    private static int OpenFileLimit()
    {
        ulong* limit = stackalloc ulong[2];
        return getrlimit(7 /* RLIMIT_NOFILE */, limit) == 0 && limit[0] < int.MaxValue ? (int)limit[0] : 1024;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, int* status, int options);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, ulong* limit);
}
