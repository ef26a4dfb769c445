using System.Runtime.InteropServices;
using Containerd.Types;
using Grpc.Core;

namespace Containerd.Shimkit.Mounts;

/// <summary>Mounts and unmounts a container's root filesystem with mount(2).</summary>
public static class RootfsMount
{
    private const int MntDetach = 2;

    /// <summary>Mounts <paramref name="mounts"/> (as containerd sends them in CreateTaskRequest.rootfs) in order
    /// at <paramref name="target"/>. On failure, whatever was mounted is unmounted again.</summary>
    /// <exception cref="ShimException">Internal (or InvalidArgument for bad options), naming the mount and the reason.</exception>
    public static void MountAll(IEnumerable<Mount> mounts, string target)
    {
        var done = 0;
        try
        {
            foreach (var m in mounts)
            {
                MountOne(m.Type, m.Source, target, m.Options);
                done++;
            }
        }
        catch
        {
            for (var i = 0; i < done; i++)
            {
                Unmount(target);
            }
            throw;
        }
    }

    /// <summary>Mounts one filesystem; bind mounts made read-only are remounted as the kernel requires.</summary>
    public static void MountOne(string type, string source, string target, IEnumerable<string> options)
    {
        var parsed = MountOptions.Parse(options);
        var bind = parsed.IsBind || type == "bind";
        var flags = parsed.Flags | (type == "bind" ? MountOptions.Bind : 0);
        // Bind mounts ignore every flag but MS_BIND|MS_REC on the first call.
        var first = bind ? flags & (MountOptions.Bind | MountOptions.Recursive) : flags;
        Call(source, target, bind ? null : type, first, parsed.Data.Length == 0 ? null : parsed.Data, type);
        if (bind && (flags & ~(MountOptions.Bind | MountOptions.Recursive)) != 0)
        {
            Call(null, target, null, flags | MountOptions.Remount, null, type);
        }
        if (parsed.PropagationFlags != 0)
        {
            Call(null, target, null, parsed.PropagationFlags, null, type);
        }
    }

    /// <summary>Lazily unmounts <paramref name="target"/>; false when nothing was mounted there.</summary>
    public static bool Unmount(string target)
    {
        if (Libc.Umount2(target, MntDetach) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        if (errno is Libc.EINVAL or Libc.ENOENT)
        {
            return false;
        }
        throw new ShimException(StatusCode.Internal, $"unmount {target}: {Libc.StrError(errno)}");
    }

    /// <summary>Unmounts every filesystem stacked on <paramref name="target"/>.</summary>
    public static void UnmountAll(string target)
    {
        for (var i = 0; i < 64 && Unmount(target); i++)
        {
        }
    }

    private static void Call(string? source, string target, string? fstype, ulong flags, string? data, string type)
    {
        if (Libc.Mount(source, target, fstype, (nuint)flags, data) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new ShimException(errno == Libc.EINVAL ? StatusCode.InvalidArgument : StatusCode.Internal,
                $"mount {type} {source} at {target}: {Libc.StrError(errno)}");
        }
    }
}
