using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using CgV1 = Containerd.Cgroups.V1;
using CgV2 = Containerd.Cgroups.V2;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// What an instance that has no cgroup of its own (one running inside a shared host process) knows about itself,
/// in the units cgroups use: bytes of memory, nanoseconds of CPU time.
/// </summary>
/// <param name="MemoryUsage">Bytes the instance holds (for a wasm instance: its linear memory).</param>
/// <param name="MemoryLimit">Its memory limit in bytes; 0 when it has none.</param>
/// <param name="CpuNanos">CPU time its thread used.</param>
/// <param name="Periods">Enforcement periods that elapsed while it ran under a CPU quota.</param>
/// <param name="ThrottledPeriods">How often it was paused for being over its quota.</param>
/// <param name="ThrottledNanos">How long it was paused in total.</param>
public readonly record struct EngineUsage(
    ulong MemoryUsage,
    ulong MemoryLimit,
    ulong CpuNanos,
    ulong Periods = 0,
    ulong ThrottledPeriods = 0,
    ulong ThrottledNanos = 0);

/// <summary>
/// Packs an <see cref="EngineUsage"/> into containerd's own metrics types, the ones <see cref="Cgroup.Stats"/>
/// returns, in the version the host's cgroups have, so <c>ctr task metrics</c>, the CRI plugin and kubelet read a
/// shared-mode instance exactly as they read a normal-mode container.
/// </summary>
public static class EngineMetrics
{
    /// <summary>The metrics as the host's cgroup version reports them.</summary>
    public static Any Pack(EngineUsage usage) => Pack(CgroupHierarchy.Host.Version, usage);

    /// <summary>The metrics as cgroup <paramref name="version"/> reports them.</summary>
    public static Any Pack(CgroupVersion version, EngineUsage usage)
    {
        IMessage metrics = version == CgroupVersion.V2 ? ToV2(usage) : ToV1(usage);
        return new Any { TypeUrl = metrics.Descriptor.FullName, Value = metrics.ToByteString() };
    }

    /// <summary>cgroup v1: the memory is rss and memory.usage, the CPU time cpuacct's usage.</summary>
    public static CgV1.Metrics ToV1(EngineUsage usage) => new()
    {
        Pids = new CgV1.PidsStat { Current = 1 },
        Cpu = new CgV1.CPUStat
        {
            Usage = new CgV1.CPUUsage { Total = usage.CpuNanos, User = usage.CpuNanos },
            Throttling = new CgV1.Throttle
            {
                Periods = usage.Periods,
                ThrottledPeriods = usage.ThrottledPeriods,
                ThrottledTime = usage.ThrottledNanos,
            },
        },
        Memory = new CgV1.MemoryStat
        {
            Rss = usage.MemoryUsage,
            TotalRss = usage.MemoryUsage,
            Usage = new CgV1.MemoryEntry { Usage = usage.MemoryUsage, Limit = usage.MemoryLimit },
        },
    };

    /// <summary>cgroup v2: the memory is anon and memory.current, the CPU time cpu.stat's usage.</summary>
    public static CgV2.Metrics ToV2(EngineUsage usage) => new()
    {
        Pids = new CgV2.PidsStat { Current = 1 },
        Cpu = new CgV2.CPUStat
        {
            UsageUsec = usage.CpuNanos / 1000,
            UserUsec = usage.CpuNanos / 1000,
            NrPeriods = usage.Periods,
            NrThrottled = usage.ThrottledPeriods,
            ThrottledUsec = usage.ThrottledNanos / 1000,
        },
        Memory = new CgV2.MemoryStat
        {
            Anon = usage.MemoryUsage,
            Usage = usage.MemoryUsage,
            UsageLimit = usage.MemoryLimit,
        },
    };
}
