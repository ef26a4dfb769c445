using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// An anonymous pipe whose both ends are close-on-exec, so that only the child it is explicitly handed to (as a
/// mapped fd of <c>Reaper.Spawn</c>) inherits an end: other containers spawned at the same time never hold it open,
/// and EOF means what it says.
/// </summary>
internal sealed partial class Pipe : IDisposable
{
    private const int O_CLOEXEC = 0x80000;

    private Pipe(SafeFileHandle read, SafeFileHandle write)
    {
        Read = read;
        Write = write;
    }

    /// <summary>The read end.</summary>
    public SafeFileHandle Read { get; }

    /// <summary>The write end.</summary>
    public SafeFileHandle Write { get; }

    /// <summary>Creates the pipe.</summary>
    public static unsafe Pipe Create()
    {
        int* fds = stackalloc int[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
        {
            throw new IOException($"pipe2: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        return new Pipe(new SafeFileHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>Closes both ends (each end may already have been closed on its own).</summary>
    public void Dispose()
    {
        Read.Dispose();
        Write.Dispose();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int pipe2(int* fds, int flags);
}
