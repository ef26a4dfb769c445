using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Whether a folder of compiled artifacts, and a file in it, can be trusted: the artifacts are native code that every
/// later container of the module runs, so only root may have been able to put them there.
/// </summary>
/// <remarks>
/// The rule, for the folder and every folder on the path to it: a real folder (no component is a symlink), owned by
/// root, and writable by root only. A folder on the way that others may write (<c>/tmp</c>) is accepted only with the
/// sticky bit, where nobody but its owner can rename or remove the root-owned folder below it; the cache folder itself
/// must not be one. A file must be a regular file owned by root and writable by root only. Everything is checked with
/// statx(2) without following links, and a file through its open descriptor.
/// </remarks>
internal static unsafe partial class CacheFolderTrust
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxTypeModeUid = 0x1 | 0x2 | 0x8;
    private const int StatxSize = 256;
    private const int UidOffset = 20;
    private const int ModeOffset = 28;

    private const int TypeMask = 0xf000;
    private const int Directory = 0x4000;
    private const int Regular = 0x8000;
    private const int Symlink = 0xa000;
    private const int Sticky = 0x200;
    private const int GroupOrOtherWrite = 0x12; // 0022

    private const int EExist = 17;
    private const int OWriteOnly = 0x1;
    private const int OCreate = 0x40;
    private const int OExclusive = 0x80;
    private const int OCloseOnExec = 0x80000;

    /// <summary>Creates <paramref name="folder"/> (mode 0700) when it is missing, then <see cref="FolderProblem"/>.</summary>
    public static string? Prepare(string folder)
    {
        if (!System.IO.Directory.Exists(folder))
        {
            try
            {
                CreateFolders(folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"creating {folder}: {e.Message}";
            }
        }
        return FolderProblem(folder);
    }

    /// <summary>Why <paramref name="folder"/> (absolute) is not to be trusted, or null when it is.</summary>
    public static string? FolderProblem(string folder)
    {
        if (!Path.IsPathRooted(folder))
        {
            return $"{folder} is not an absolute path";
        }
        var parts = folder.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = "/";
        for (var i = -1; i < parts.Length; i++)
        {
            if (i >= 0)
            {
                if (parts[i] is "." or "..")
                {
                    return $"{folder} has a {parts[i]} component";
                }
                current = current == "/" ? "/" + parts[i] : current + "/" + parts[i];
            }
            if (!Stat(AtFdCwd, current, AtSymlinkNoFollow, out var uid, out var mode, out var error))
            {
                return $"{current}: {error}";
            }
            var last = i == parts.Length - 1;
            if ((mode & TypeMask) == Symlink)
            {
                return $"{current} is a symbolic link";
            }
            if ((mode & TypeMask) != Directory)
            {
                return $"{current} is not a folder";
            }
            if (uid != 0)
            {
                return $"{current} is owned by uid {uid}, not root";
            }
            if ((mode & GroupOrOtherWrite) != 0 && (last || (mode & Sticky) == 0))
            {
                return $"{current} has mode {Octal(mode)}: others than root may write to it";
            }
        }
        return null;
    }

    /// <summary>Why the file open on <paramref name="file"/> is not to be trusted, or null when it is.</summary>
    public static string? FileProblem(SafeFileHandle file, string path)
    {
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            if (!Stat((int)file.DangerousGetHandle(), "", AtEmptyPath, out var uid, out var mode, out var error))
            {
                return $"{path}: {error}";
            }
            if ((mode & TypeMask) != Regular)
            {
                return $"{path} is not a regular file";
            }
            if (uid != 0)
            {
                return $"{path} is owned by uid {uid}, not root";
            }
            return (mode & GroupOrOtherWrite) != 0 ? $"{path} has mode {Octal(mode)}: others than root may write to it" : null;
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>Creates <paramref name="folder"/> and its missing parents, mode 0700 whatever the umask allows.</summary>
    public static void CreateFolders(string folder)
    {
        var full = Path.GetFullPath(folder);
        if (System.IO.Directory.Exists(full))
        {
            return;
        }
        if (Path.GetDirectoryName(full) is { } parent)
        {
            CreateFolders(parent);
        }
        if (MakeDirectory(full, 0b111_000_000) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EExist)
        {
            throw new IOException($"creating {full}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    /// <summary>Creates <paramref name="path"/>, which must not exist yet (O_EXCL: not even as a link), mode 0600, for writing.</summary>
    public static SafeFileHandle CreateFile(string path)
    {
        var fd = Open(path, OWriteOnly | OCreate | OExclusive | OCloseOnExec, 0b110_000_000);
        if (fd < 0)
        {
            throw new IOException($"creating {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private static string Octal(int mode) => Convert.ToString(mode & 0xfff, 8).PadLeft(4, '0');

    private static bool Stat(int dirFd, string path, int flags, out uint uid, out int mode, out string? error)
    {
        var buffer = stackalloc byte[StatxSize];
        if (StatX(dirFd, path, flags, StatxTypeModeUid, buffer) != 0)
        {
            uid = 0;
            mode = 0;
            error = Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
            return false;
        }
        uid = *(uint*)(buffer + UidOffset);
        mode = *(ushort*)(buffer + ModeOffset);
        error = null;
        return true;
    }

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeDirectory(string path, int mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatX(int dirFd, string path, int flags, uint mask, byte* buffer);
}
