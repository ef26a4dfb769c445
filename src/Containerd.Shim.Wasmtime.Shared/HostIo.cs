using System.Runtime.InteropServices;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The descriptor calls in-process instances need to keep every blocking wait interruptible: each wait polls the
/// instance's stop descriptor (an eventfd) alongside the one it waits on.
/// </summary>
internal static unsafe partial class HostIo
{
    public const short POLLIN = 0x1;
    public const short POLLOUT = 0x4;
    public const short POLLERR = 0x8;
    public const short POLLHUP = 0x10;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int EFD_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", EntryPoint = "dup3", SetLastError = true)]
    public static partial int Dup3(int oldFd, int newFd, int flags);

    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int GetTid();

    /// <summary>Waits until <paramref name="fd"/> has <paramref name="events"/> or <paramref name="stopFd"/> is
    /// readable, at most <paramref name="timeoutMs"/> (-1: forever). Returns false when stopped.</summary>
    public static bool WaitFor(int fd, short events, int stopFd, int timeoutMs = -1)
    {
        var fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = stopFd, Events = POLLIN };
        fds[1] = new PollFd { Fd = fd, Events = events };
        while (true)
        {
            var n = Poll(fds, fd >= 0 ? 2u : 1u, timeoutMs);
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR)
            {
                continue;
            }
            return (fds[0].REvents & POLLIN) == 0;
        }
    }

    /// <summary>Writes all of <paramref name="data"/> to a non-blocking <paramref name="fd"/>, waiting for room;
    /// throws <see cref="OperationCanceledException"/> when <paramref name="stopFd"/> fires first.</summary>
    public static void WriteAll(int fd, ReadOnlySpan<byte> data, int stopFd)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Write(fd, p + done, (nuint)(data.Length - done));
                if (n >= 0)
                {
                    done += (int)n;
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }
                if (errno != EAGAIN)
                {
                    throw new IOException($"write: errno {errno}");
                }
                if (!WaitFor(fd, POLLOUT, stopFd))
                {
                    throw new OperationCanceledException("the instance is stopping");
                }
            }
        }
    }

    public static void SetNonBlocking(int fd)
    {
        var flags = Fcntl(fd, F_GETFL, 0);
        if (flags >= 0)
        {
            Fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        }
    }

    /// <summary>Points each of <paramref name="fds"/> at /dev/null, keeping its number: a thread still holding the
    /// number writes nowhere (never to a file that reuses it), and the file it named loses this reference (a FIFO's
    /// reader sees EOF once no other writer holds it).</summary>
    public static void Silence(ReadOnlySpan<int> fds)
    {
        var devNull = Open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devNull < 0)
        {
            return;
        }
        foreach (var fd in fds)
        {
            if (fd >= 0)
            {
                Dup3(devNull, fd, O_CLOEXEC);
            }
        }
        Close(devNull);
    }

    public const int O_WRONLY = 0x1;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    /// <summary>Makes the eventfd readable for good (every later poll on it returns at once).</summary>
    public static void Signal(int eventFd)
    {
        ulong one = 1;
        Write(eventFd, (byte*)&one, 8);
    }
}
