using System.Runtime.InteropServices;

namespace Containerd.Shimkit;

/// <summary>The libc calls the kit needs and .NET does not expose. Errors come back through errno
/// (<see cref="Marshal.GetLastPInvokeError"/>) unless noted.</summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int EINTR = 4;
    public const int ESRCH = 3;
    public const int ECHILD = 10;
    public const int EINVAL = 22;
    public const int ENOENT = 2;
    public const int EBUSY = 16;

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    public const int P_ALL = 0;
    public const int P_PID = 1;
    public const int WEXITED = 4;
    public const int WNOHANG = 1;
    public const int WNOWAIT = 0x01000000;

    public const int CLD_EXITED = 1;
    public const int CLD_KILLED = 2;
    public const int CLD_DUMPED = 3;

    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_TRUNC = 0x200;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    public const int F_DUPFD_CLOEXEC = 1030;
    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;
    public const int FD_CLOEXEC = 1;

    public const int PR_SET_CHILD_SUBREAPER = 36;

    public const int POSIX_SPAWN_SETSIGDEF = 0x04;
    public const int POSIX_SPAWN_SETSIGMASK = 0x08;
    public const int POSIX_SPAWN_SETSID = 0x80;

    /// <summary>siginfo_t is 128 bytes on every Linux ABI; the SIGCHLD fields sit at fixed offsets on 64-bit.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    public struct SigInfo
    {
        [FieldOffset(0)] public int Signo;
        [FieldOffset(8)] public int Code;
        [FieldOffset(16)] public int Pid;
        [FieldOffset(24)] public int Status;
    }

    [LibraryImport(Lib, EntryPoint = "waitid", SetLastError = true)]
    public static partial int WaitId(int idType, int id, SigInfo* info, int options);

    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(Lib, EntryPoint = "getpid")]
    public static partial int GetPid();

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nuint count);

    public const int EAGAIN = 11;
    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;
    public const int IN_CLOEXEC = 0x80000;
    public const int IN_NONBLOCK = 0x800;
    public const uint IN_MODIFY = 0x2;
    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const uint EPOLLIN = 0x1;

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport(Lib, EntryPoint = "inotify_init1", SetLastError = true)]
    public static partial int InotifyInit1(int flags);

    [LibraryImport(Lib, EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int InotifyAddWatch(int fd, string path, uint mask);

    [LibraryImport(Lib, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    /// <summary><paramref name="ev"/> points at a struct epoll_event (<see cref="EpollEventSize"/> bytes).</summary>
    [LibraryImport(Lib, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport(Lib, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxevents, int timeout);

    // struct epoll_event is packed on x86-64 (u32 events, then the u64 data at offset 4) and naturally aligned
    // elsewhere (data at offset 8).
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport(Lib, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string? source, string target, string? fstype, nuint flags, string? data);

    [LibraryImport(Lib, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    // pidfd_open(2) and pidfd_send_signal(2) through syscall(2): glibc has wrappers only since 2.36. The numbers are
    // the same on every architecture (both came after the syscall tables were unified).
    private const nint SYS_pidfd_send_signal = 424;
    private const nint SYS_pidfd_open = 434;
    public const short POLLIN = 0x1;

    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall(nint number, nint a1, nint a2, nint a3, nint a4);

    /// <summary>A descriptor that refers to process <paramref name="pid"/> for as long as it is open, even once the
    /// number is reused; -1 with errno ESRCH when there is no such process.</summary>
    public static int PidfdOpen(int pid) => (int)Syscall(SYS_pidfd_open, pid, 0, 0, 0);

    /// <summary>Signals the process of <paramref name="pidfd"/>; ESRCH when it has exited.</summary>
    public static int PidfdSendSignal(int pidfd, int signal) => (int)Syscall(SYS_pidfd_send_signal, pidfd, signal, 0, 0);

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport(Lib, EntryPoint = "strerror")]
    private static partial nint StrErrorNative(int errnum);

    /// <summary>The C library's description of <paramref name="errno"/>.</summary>
    public static string StrError(int errno) => Marshal.PtrToStringUTF8(StrErrorNative(errno)) ?? $"errno {errno}";

    // posix_spawn: results are returned, not put in errno.
    [LibraryImport(Lib, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* fa);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* fa);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* fa, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addclose")]
    public static partial int FileActionsAddClose(void* fa, int fd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddOpen(void* fa, int fd, string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addchdir_np", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddChdir(void* fa, string path);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    public static partial int FileActionsAddCloseFrom(void* fa, int lowFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init")]
    public static partial int AttrInit(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int AttrDestroy(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int AttrSetFlags(void* attr, short flags);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int AttrSetSigDefault(void* attr, void* sigset);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int AttrSetSigMask(void* attr, void* sigset);

    [LibraryImport(Lib, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* set);

    [LibraryImport(Lib, EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* set);
}
