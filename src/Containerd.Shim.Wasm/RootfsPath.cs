using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Opens a path as the container sees it, by descriptor, starting from a descriptor of the rootfs: the kernel's
/// <c>openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)</c> where it exists (Linux 5.6), else a walk of our own, one
/// component at a time from held directory descriptors with <c>O_NOFOLLOW</c>, reading each symlink and resolving its
/// target inside the rootfs. Either way an absolute symlink means the rootfs's root, a <c>..</c> at the root stays
/// there, and nothing is ever looked up by a host path that a tenant could swap between the check and the use: the
/// caller gets the descriptor of what was found and uses that.
/// </summary>
internal static partial class RootfsPath
{
    // The kernel's own limit on symlinks followed in one lookup (ELOOP).
    private const int MaxSymlinks = 40;

    /// <summary>What a path found inside the rootfs is.</summary>
    public enum Kind
    {
        /// <summary>A regular file.</summary>
        File,

        /// <summary>A directory.</summary>
        Directory,

        /// <summary>Anything else: a FIFO, a device, a socket.</summary>
        Other,
    }

    /// <summary>Test hook: resolve with the walk even where openat2 exists, so both strategies are exercised.</summary>
    internal static bool ForceWalk { get; set; }

    /// <summary>Opens the rootfs folder <paramref name="hostPath"/> (a path the shim or containerd chose, not a
    /// tenant) as the root descriptor of later lookups.</summary>
    public static SafeFileHandle OpenRoot(string hostPath)
    {
        var fd = Sys.Open(hostPath, Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
        return fd >= 0
            ? new SafeFileHandle(fd, ownsHandle: true)
            : throw new IOException($"open the rootfs {hostPath}: {Sys.Error(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>
    /// Opens (<c>O_PATH</c>) what <paramref name="containerPath"/> (absolute, or relative to <paramref name="cwd"/>)
    /// leads to inside <paramref name="root"/>, following symlinks inside it. Throws
    /// <see cref="EntrypointException"/> naming <paramref name="containerPath"/>: NotFound (with the symlinks that
    /// led there, when any did), EscapesRootfs for a path whose own <c>..</c> climb above the root.
    /// </summary>
    public static SafeFileHandle Open(SafeFileHandle root, string containerPath, string cwd = "/")
    {
        var path = Absolute(containerPath, cwd);
        if (ClimbsAboveRoot(path))
        {
            throw new EntrypointException(EntrypointError.EscapesRootfs, containerPath,
                "escapes the rootfs (\"..\" above the container's root)");
        }
        var relative = path.TrimStart('/');
        if (relative.Length == 0)
        {
            relative = ".";
        }
        int fd;
        int error;
        if (!ForceWalk && TryOpenat2(root, relative, out fd, out error))
        {
            if (fd >= 0)
            {
                return new SafeFileHandle(fd, ownsHandle: true);
            }
        }
        else
        {
            (fd, error, _) = Walk(root, relative);
            if (fd >= 0)
            {
                return new SafeFileHandle(fd, ownsHandle: true);
            }
        }
        throw Failure(root, containerPath, relative, error);
    }

    /// <summary>The kind of file <paramref name="handle"/> refers to.</summary>
    public static Kind KindOf(SafeFileHandle handle) => (Mode(handle) & Sys.S_IFMT) switch
    {
        Sys.S_IFREG => Kind.File,
        Sys.S_IFDIR => Kind.Directory,
        _ => Kind.Other,
    };

    /// <summary>The <c>st_mode</c> of <paramref name="handle"/>.</summary>
    public static unsafe uint Mode(SafeFileHandle handle)
    {
        Sys.Statx statx;
        if (Sys.StatxFd((int)handle.DangerousGetHandle(), "", Sys.AT_EMPTY_PATH, Sys.STATX_TYPE | Sys.STATX_MODE, &statx) != 0)
        {
            throw new IOException($"statx: {Sys.Error(Marshal.GetLastPInvokeError())}");
        }
        return statx.Mode;
    }

    /// <summary>
    /// Opens the regular file behind the <c>O_PATH</c> descriptor <paramref name="handle"/> for reading, through the
    /// descriptor itself (<c>/proc/self/fd/N</c>), so it is the same file that was resolved and checked, never one a
    /// racer put at the same path. Refuses anything but a regular file without opening it: opening a FIFO would
    /// block and a device could have effects of its own.
    /// </summary>
    public static SafeFileHandle OpenForReading(SafeFileHandle handle, string what)
    {
        if (KindOf(handle) != Kind.File)
        {
            throw new IOException($"{what} is not a regular file");
        }
        var fd = Sys.Open($"/proc/self/fd/{(int)handle.DangerousGetHandle()}", Sys.O_RDONLY | Sys.O_CLOEXEC | Sys.O_NOCTTY | Sys.O_NONBLOCK, 0);
        return fd >= 0
            ? new SafeFileHandle(fd, ownsHandle: true)
            : throw new IOException($"open {what}: {Sys.Error(Marshal.GetLastPInvokeError())}");
    }

    private static string Absolute(string containerPath, string cwd) =>
        containerPath.StartsWith('/') ? containerPath : $"{(cwd.StartsWith('/') ? cwd : "/" + cwd).TrimEnd('/')}/{containerPath}";

    // The path as written (before any symlink) has more ".." than components to climb: hostile or mistaken input,
    // refused with a clear error although the kernel would only clamp it to the root.
    private static bool ClimbsAboveRoot(string path)
    {
        var depth = 0;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (--depth < 0)
                {
                    return true;
                }
            }
            else if (part != ".")
            {
                depth++;
            }
        }
        return false;
    }

    // False when the kernel has no openat2 (ENOSYS): the caller walks instead.
    private static unsafe bool TryOpenat2(SafeFileHandle root, string relative, out int fd, out int error)
    {
        var how = new Sys.OpenHow
        {
            Flags = Sys.O_PATH | Sys.O_CLOEXEC,
            Resolve = Sys.RESOLVE_IN_ROOT | Sys.RESOLVE_NO_MAGICLINKS,
        };
        for (var attempt = 0; ; attempt++)
        {
            fd = (int)Sys.Openat2((int)root.DangerousGetHandle(), relative, &how, (nuint)sizeof(Sys.OpenHow));
            error = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
            if (fd >= 0 || error != Sys.EAGAIN || attempt == 16)
            {
                // EAGAIN: a rename raced the lookup somewhere in the tree; the kernel asks to retry.
                return error != Sys.ENOSYS;
            }
        }
    }

    /// <summary>
    /// The walk: resolves <paramref name="relative"/> from <paramref name="root"/> with a stack of directory
    /// descriptors of our own, so <c>..</c> pops our stack instead of asking the kernel for a parent (which a
    /// concurrent rename could have moved outside the rootfs). Returns the O_PATH descriptor of the result or -1 with
    /// the errno, and the last symlink followed (for error messages).
    /// </summary>
    internal static (int Fd, int Error, string? LastLink) Walk(SafeFileHandle root, string relative)
    {
        var rootFd = (int)root.DangerousGetHandle();
        var pending = new Stack<string>(Split(relative).Reverse());
        var stack = new List<(int Fd, string Name)>();
        string? lastLink = null;
        var links = 0;
        try
        {
            while (pending.TryPop(out var part))
            {
                if (part == ".")
                {
                    continue;
                }
                if (part == "..")
                {
                    if (stack.Count > 0)
                    {
                        Sys.Close(stack[^1].Fd);
                        stack.RemoveAt(stack.Count - 1);
                    }
                    continue;
                }
                var parent = stack.Count > 0 ? stack[^1].Fd : rootFd;
                var fd = Sys.Openat(parent, part, Sys.O_PATH | Sys.O_NOFOLLOW | Sys.O_CLOEXEC, 0);
                if (fd < 0)
                {
                    return (-1, Marshal.GetLastPInvokeError(), lastLink);
                }
                var kind = Sys.ModeOf(fd) & Sys.S_IFMT;
                if (kind == Sys.S_IFLNK)
                {
                    var target = Sys.ReadLink(fd);
                    Sys.Close(fd);
                    if (target is null)
                    {
                        return (-1, Marshal.GetLastPInvokeError(), lastLink);
                    }
                    if (++links > MaxSymlinks)
                    {
                        return (-1, Sys.ELOOP, lastLink);
                    }
                    lastLink = $"/{string.Join('/', stack.Select(s => s.Name).Append(part))} -> {target}";
                    if (target.StartsWith('/'))
                    {
                        foreach (var (f, _) in stack)
                        {
                            Sys.Close(f);
                        }
                        stack.Clear();
                    }
                    foreach (var p in Split(target).Reverse())
                    {
                        pending.Push(p);
                    }
                    continue;
                }
                if (kind != Sys.S_IFDIR && pending.Count > 0 && pending.Any(p => p != "."))
                {
                    Sys.Close(fd);
                    return (-1, Sys.ENOTDIR, lastLink);
                }
                stack.Add((fd, part));
            }
            if (stack.Count == 0)
            {
                var self = Sys.Openat(rootFd, ".", Sys.O_PATH | Sys.O_DIRECTORY | Sys.O_CLOEXEC, 0);
                return self >= 0 ? (self, 0, lastLink) : (-1, Marshal.GetLastPInvokeError(), lastLink);
            }
            var result = stack[^1].Fd;
            stack.RemoveAt(stack.Count - 1);
            return (result, 0, lastLink);
        }
        finally
        {
            foreach (var (f, _) in stack)
            {
                Sys.Close(f);
            }
        }
    }

    private static EntrypointException Failure(SafeFileHandle root, string containerPath, string relative, int error)
    {
        // Only on the error path: walk once more to name the symlink that led nowhere, if any.
        var link = Walk(root, relative).LastLink;
        var through = link is null ? "" : $" (through the symlink {link}, which resolves inside the rootfs)";
        return error switch
        {
            Sys.ENOENT => new EntrypointException(EntrypointError.NotFound, containerPath, $"no such file in the rootfs{through}"),
            Sys.ENOTDIR => new EntrypointException(EntrypointError.NotFound, containerPath, $"a component of the path is not a directory{through}"),
            Sys.ELOOP => new EntrypointException(EntrypointError.EscapesRootfs, containerPath, "too many levels of symbolic links"),
            _ => new EntrypointException(EntrypointError.NotFound, containerPath, $"cannot be resolved in the rootfs: {Sys.Error(error)}{through}"),
        };
    }

    private static IEnumerable<string> Split(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries);
}
