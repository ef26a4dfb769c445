using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// fds 7 and 8 of an instance process: its container cgroup's <c>memory.stat</c> and usage file, opened read-only by
/// the shim, which made the cgroup. The instance measures what the cgroup is charged through them right before it
/// instantiates the guest (<see cref="RuntimeContext.GuestMemoryBudget"/>), when it may no longer see
/// <c>/sys/fs/cgroup</c> (the container's root, the container's user).
/// </summary>
internal sealed class MemoryChargeFds : IDisposable
{
    /// <summary>The instance's fd of <c>memory.stat</c>.</summary>
    public const int StatFd = 7;

    /// <summary>The instance's fd of <c>memory.usage_in_bytes</c> (v1) or <c>memory.current</c> (v2).</summary>
    public const int UsageFd = 8;

    private readonly SafeFileHandle _stat;
    private readonly SafeFileHandle _usage;

    private MemoryChargeFds(SafeFileHandle stat, SafeFileHandle usage)
    {
        _stat = stat;
        _usage = usage;
    }

    /// <summary>Shim side: the files of <paramref name="cgroup"/>, or null without a cgroup, a memory controller or
    /// the files (the instance then falls back to its resident size).</summary>
    public static MemoryChargeFds? Open(InstanceCgroup? cgroup)
    {
        try
        {
            return cgroup?.Cgroup.OpenMemoryFiles() is var (stat, usage) ? new MemoryChargeFds(stat, usage) : null;
        }
        catch (ShimException e)
        {
            ShimLog.Debug($"no memory charge for the instance: {e.Message}");
            return null;
        }
    }

    /// <summary>Shim side: maps both files to their fds in the spawn's file map.</summary>
    public void AddTo(IDictionary<int, SafeHandle> files)
    {
        files[StatFd] = _stat;
        files[UsageFd] = _usage;
    }

    /// <summary>Instance side: the cgroup's charge now, or null when the shim passed no such files.</summary>
    public static MemoryCharge? Read() => MemoryCharge.Read(StatFd, UsageFd);

    /// <summary>Closes the shim's copies (the child has its own after the spawn).</summary>
    public void Dispose()
    {
        _stat.Dispose();
        _usage.Dispose();
    }
}
