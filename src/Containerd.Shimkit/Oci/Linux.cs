using System.Text.Json;
using System.Text.Json.Serialization;

namespace Containerd.Shimkit.Oci;

/// <summary>Linux-specific configuration (<c>linux</c> in config.json).</summary>
public sealed class Linux
{
    /// <summary>The cgroup of the container, as a path or a systemd slice triple.</summary>
    public string? CgroupsPath { get; set; }

    /// <summary>Resource limits applied through the cgroup.</summary>
    public LinuxResources? Resources { get; set; }

    /// <summary>Namespaces to create or join.</summary>
    public List<LinuxNamespace>? Namespaces { get; set; }

    /// <summary>Paths masked inside the container.</summary>
    public List<string>? MaskedPaths { get; set; }

    /// <summary>Paths made read-only inside the container.</summary>
    public List<string>? ReadonlyPaths { get; set; }

    /// <summary>Kernel parameters to set.</summary>
    public Dictionary<string, string>? Sysctl { get; set; }

    /// <summary>The seccomp profile of the container's process, or null for none.</summary>
    public LinuxSeccomp? Seccomp { get; set; }

    /// <summary>Device nodes to create in the container.</summary>
    public List<LinuxDevice>? Devices { get; set; }

    /// <summary>Mount propagation of the rootfs (<c>shared</c>, <c>slave</c>, <c>private</c>, <c>unbindable</c>, or
    /// their recursive forms).</summary>
    public string? RootfsPropagation { get; set; }

    /// <summary>User namespace uid mappings, kept as JSON (a host that cannot apply them refuses them).</summary>
    public List<JsonElement>? UidMappings { get; set; }

    /// <summary>User namespace gid mappings, kept as JSON.</summary>
    public List<JsonElement>? GidMappings { get; set; }

    /// <summary>The SELinux context of the container's mounts.</summary>
    public string? MountLabel { get; set; }
}

/// <summary>cgroup resource limits.</summary>
public sealed class LinuxResources
{
    /// <summary>Memory limits.</summary>
    public LinuxMemory? Memory { get; set; }

    /// <summary>CPU limits.</summary>
    public LinuxCpu? Cpu { get; set; }

    /// <summary>Process-count limit.</summary>
    public LinuxPids? Pids { get; set; }

    /// <summary>Device cgroup rules, applied in order.</summary>
    public List<LinuxDeviceCgroup>? Devices { get; set; }
}

/// <summary>One device cgroup rule (<c>linux.resources.devices[]</c>).</summary>
public sealed class LinuxDeviceCgroup
{
    /// <summary>Whether the rule allows (true) or denies (false) access.</summary>
    public bool Allow { get; set; }

    /// <summary><c>a</c> (all), <c>c</c> (character) or <c>b</c> (block); null means all.</summary>
    public string? Type { get; set; }

    /// <summary>Major number; null means any.</summary>
    public long? Major { get; set; }

    /// <summary>Minor number; null means any.</summary>
    public long? Minor { get; set; }

    /// <summary>Any of <c>r</c>, <c>w</c> and <c>m</c> (mknod); null means all three.</summary>
    public string? Access { get; set; }
}

/// <summary>A device node to create in the container (<c>linux.devices[]</c>).</summary>
public sealed class LinuxDevice
{
    /// <summary>Path inside the container.</summary>
    public string Path { get; set; } = "";

    /// <summary><c>c</c>, <c>b</c>, <c>u</c> or <c>p</c>.</summary>
    public string Type { get; set; } = "";

    /// <summary>Major number.</summary>
    public long Major { get; set; }

    /// <summary>Minor number.</summary>
    public long Minor { get; set; }

    /// <summary>File mode.</summary>
    public uint? FileMode { get; set; }

    /// <summary>Owner uid.</summary>
    public uint? Uid { get; set; }

    /// <summary>Owner gid.</summary>
    public uint? Gid { get; set; }
}

/// <summary>Memory limits, in bytes.</summary>
public sealed class LinuxMemory
{
    /// <summary>Hard limit.</summary>
    public long? Limit { get; set; }

    /// <summary>Soft limit.</summary>
    public long? Reservation { get; set; }

    /// <summary>Memory plus swap limit.</summary>
    public long? Swap { get; set; }

    /// <summary>Swappiness (0-100).</summary>
    public ulong? Swappiness { get; set; }

    /// <summary>Whether the OOM killer is disabled.</summary>
    [JsonPropertyName("disableOOMKiller")]
    public bool? DisableOomKiller { get; set; }
}

/// <summary>CPU limits.</summary>
public sealed class LinuxCpu
{
    /// <summary>Relative weight.</summary>
    public ulong? Shares { get; set; }

    /// <summary>Allowed CPU time per period, in microseconds.</summary>
    public long? Quota { get; set; }

    /// <summary>The period of <see cref="Quota"/>, in microseconds.</summary>
    public ulong? Period { get; set; }

    /// <summary>CPUs the container may use (cpuset syntax).</summary>
    public string? Cpus { get; set; }

    /// <summary>Memory nodes the container may use (cpuset syntax).</summary>
    public string? Mems { get; set; }
}

/// <summary>Process-count limit.</summary>
public sealed class LinuxPids
{
    /// <summary>Maximum number of processes; 0 or negative means unlimited.</summary>
    public long Limit { get; set; }
}

/// <summary>A namespace to create (no path) or join (path).</summary>
public sealed class LinuxNamespace
{
    /// <summary>Namespace type: pid, network, mount, ipc, uts, user, cgroup, time.</summary>
    public string Type { get; set; } = "";

    /// <summary>Path of an existing namespace to join.</summary>
    public string? Path { get; set; }
}
