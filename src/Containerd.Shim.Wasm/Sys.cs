using System.Runtime.InteropServices;
using System.Text;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The Linux calls the wasm layer makes on descriptors (x86-64 and arm64 share these numbers and layouts, which is
/// why <c>statx</c> is used rather than the architecture-specific <c>struct stat</c>).
/// </summary>
internal static unsafe partial class Sys
{
    public const int O_RDONLY = 0;
    public const int O_NOCTTY = 0x100;
    public const int O_NONBLOCK = 0x800;
    public const int O_DIRECTORY = 0x10000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;

    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;

    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_IN_ROOT = 0x10;

    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;
    public const uint STATX_UID = 0x8;
    public const uint STATX_INO = 0x100;

    public const uint S_IFMT = 0xF000;
    public const uint S_IFREG = 0x8000;
    public const uint S_IFDIR = 0x4000;
    public const uint S_IFLNK = 0xA000;

    public const int ENOENT = 2;
    public const int EAGAIN = 11;
    public const int ENOTDIR = 20;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;

    // The same number on x86-64 and arm64 (the "common" syscall table since 5.x).
    private const long SYS_openat2 = 437;

    /// <summary><c>struct open_how</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary><c>struct statx</c> (256 bytes), as far as the fields read here.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort ModeField;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;

        public readonly uint Mode => ModeField;
    }

    public static long Openat2(int dirfd, string path, OpenHow* how, nuint size)
    {
        var bytes = Utf8z(path);
        fixed (byte* p = bytes)
        {
            return syscall(SYS_openat2, dirfd, (nint)p, (nint)how, (nint)size);
        }
    }

    /// <summary>st_mode of an open descriptor, or 0 when statx fails.</summary>
    public static uint ModeOf(int fd)
    {
        Statx s;
        return StatxFd(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE, &s) == 0 ? s.Mode : 0;
    }

    /// <summary>The target of the symlink an O_PATH|O_NOFOLLOW descriptor refers to, or null (errno set).</summary>
    public static string? ReadLink(int fd)
    {
        var buffer = new byte[4096];
        fixed (byte* b = buffer)
        {
            var n = readlinkat(fd, "", b, (nuint)buffer.Length);
            return n < 0 ? null : Encoding.UTF8.GetString(buffer, 0, (int)n);
        }
    }

    public static string Error(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    private static byte[] Utf8z(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Openat(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatxFd(int dirfd, string path, int flags, uint mask, Statx* buffer);

    // Hands the free memory of every malloc arena back to the kernel (glibc; returns 1 if any was released).
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    public static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlinkat(int dirfd, string path, byte* buffer, nuint size);

    // glibc's syscall(2) is variadic, but its x86-64 and arm64 implementations only move registers, so a call with
    // integer arguments through a fixed signature is exact.
    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint a1, nint a2, nint a3, nint a4);
}
