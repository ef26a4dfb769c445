using Containerd.Cgroups.V1;
using Containerd.Shimkit.Oci;
using Google.Protobuf;
using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>A container's cgroup on the v1 hierarchies: one directory per mounted controller hierarchy.</summary>
internal sealed class CgroupV1 : Cgroup
{
    // cpuacct.stat counts in USER_HZ, which is 100 on every Linux architecture .NET runs on.
    private const ulong NanosecondsPerTick = 10_000_000;

    private readonly Dictionary<string, string> _dirs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _roots = new(StringComparer.Ordinal);

    internal CgroupV1(IReadOnlyDictionary<string, string> controllers, string path)
        : base(path)
    {
        foreach (var (controller, mount) in controllers)
        {
            // Co-mounted controllers (cpu,cpuacct) share one directory.
            _roots[controller] = mount;
            _dirs[controller] = System.IO.Path.Join(mount, CgroupPath.Absolute(path, controller));
        }
        Directories = [.. _dirs.Values.Distinct(StringComparer.Ordinal)];
    }

    /// <inheritdoc/>
    public override CgroupVersion Version => CgroupVersion.V1;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Directories { get; }

    /// <inheritdoc/>
    public override string MetricsTypeUrl => Metrics.Descriptor.FullName;

    /// <inheritdoc/>
    private protected override string? MemoryDirectory => DirectoryOf("memory");

    /// <inheritdoc/>
    private protected override string MemoryUsageFile => "memory.usage_in_bytes";

    /// <summary>The directory of <paramref name="controller"/>, or null when the host does not mount it.</summary>
    public string? DirectoryOf(string controller) => _dirs.GetValueOrDefault(controller);

    /// <inheritdoc/>
    public override void Apply(LinuxResources resources)
    {
        if (resources.Devices is { } devices)
        {
            ApplyDevices(devices);
        }
        if (resources.Cpu is { } cpu && DirectoryOf("cpuset") is { } cpuset)
        {
            if (!string.IsNullOrEmpty(cpu.Cpus))
            {
                Write(cpuset, "cpuset.cpus", cpu.Cpus);
            }
            if (!string.IsNullOrEmpty(cpu.Mems))
            {
                Write(cpuset, "cpuset.mems", cpu.Mems);
            }
        }
        if (resources.Memory is { } memory && DirectoryOf("memory") is { } mem)
        {
            ApplyMemory(mem, memory);
        }
        if (resources.Cpu is { } c && DirectoryOf("cpu") is { } cpuDir)
        {
            if (c.Shares is { } shares and > 0)
            {
                Write(cpuDir, "cpu.shares", Number(shares));
            }
            // The period first: a quota is checked against it.
            if (c.Period is { } period and > 0)
            {
                Write(cpuDir, "cpu.cfs_period_us", Number(period));
            }
            if (c.Quota is { } quota and not 0)
            {
                Write(cpuDir, "cpu.cfs_quota_us", Number(quota < 0 ? -1 : quota));
            }
        }
        if (resources.Pids is { } pids && DirectoryOf("pids") is { } pidsDir)
        {
            Write(pidsDir, "pids.max", pids.Limit > 0 ? Number(pids.Limit) : "max");
        }
    }

    // devices.allow and devices.deny take one rule per write; devices.list reads back the whitelist. The writes are
    // the difference between what the cgroup has and what the spec asks for, so an update does not take a device
    // away from a running container even for a moment.
    private void ApplyDevices(IReadOnlyList<LinuxDeviceCgroup> rules)
    {
        var target = DeviceRuleSet.FromSpec(rules);
        if (DirectoryOf("devices") is not { } dir)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                "linux.resources.devices cannot be enforced: this host mounts no cgroup v1 devices controller");
        }
        foreach (var write in target.TransitionFrom(ReadDevices(dir)))
        {
            Write(dir, write.File, write.ToString());
        }
        // The kernel ignores a rule it cannot apply (a hole in a wildcard it has, a device its parent denies) without
        // an error: what it lists now is the truth. A blacklist lists nothing but "a *:* rwm".
        var now = ReadDevices(dir);
        if (target.DefaultAllow ? !now.DefaultAllow : !now.SameAs(target))
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"{System.IO.Path.Combine(dir, "devices.list")} allows {now} after the writes; linux.resources.devices asks for {target}");
        }
    }

    private static DeviceRuleSet ReadDevices(string dir)
    {
        var path = System.IO.Path.Combine(dir, "devices.list");
        try
        {
            return DeviceRuleSet.FromList(ReadText(path));
        }
        catch (FormatException e)
        {
            throw new ShimException(StatusCode.Internal, $"reading {path}: {e.Message}", e);
        }
    }

    private static void ApplyMemory(string dir, LinuxMemory memory)
    {
        var hasSwapFile = File.Exists(System.IO.Path.Combine(dir, "memory.memsw.limit_in_bytes"));
        if (memory.Limit is { } limit and not 0)
        {
            if (memory.Swap is { } swap and not 0 && hasSwapFile)
            {
                // memory+swap may never be below memory: raise it first when it grows past the current limit.
                var current = ReadNumber(dir, "memory.limit_in_bytes");
                if (swap < 0 || (ulong)swap > current)
                {
                    Write(dir, "memory.memsw.limit_in_bytes", Number(swap < 0 ? -1 : swap));
                    Write(dir, "memory.limit_in_bytes", Number(limit < 0 ? -1 : limit));
                }
                else
                {
                    Write(dir, "memory.limit_in_bytes", Number(limit < 0 ? -1 : limit));
                    Write(dir, "memory.memsw.limit_in_bytes", Number(swap));
                }
            }
            else
            {
                Write(dir, "memory.limit_in_bytes", Number(limit < 0 ? -1 : limit));
            }
        }
        else if (memory.Swap is { } swapOnly and not 0 && hasSwapFile)
        {
            Write(dir, "memory.memsw.limit_in_bytes", Number(swapOnly < 0 ? -1 : swapOnly));
        }
        if (memory.Reservation is { } reservation and not 0)
        {
            Write(dir, "memory.soft_limit_in_bytes", Number(reservation < 0 ? -1 : reservation));
        }
        if (memory.Swappiness is { } swappiness and <= 100 && File.Exists(System.IO.Path.Combine(dir, "memory.swappiness")))
        {
            Write(dir, "memory.swappiness", Number(swappiness));
        }
        if (memory.DisableOomKiller == true)
        {
            Write(dir, "memory.oom_control", "1");
        }
    }

    /// <inheritdoc/>
    public override ulong OomKillCount() =>
        DirectoryOf("memory") is { } mem ? ReadKeyed(mem, "memory.oom_control").GetValueOrDefault("oom_kill") : 0;

    /// <inheritdoc/>
    internal override unsafe int OpenOomNotification()
    {
        // v1's OOM notification: an eventfd registered against memory.oom_control through cgroup.event_control.
        if (DirectoryOf("memory") is not { } mem)
        {
            return -1;
        }
        var eventFd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (eventFd < 0)
        {
            return -1;
        }
        var control = Libc.Open(System.IO.Path.Combine(mem, "memory.oom_control"), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        try
        {
            if (control >= 0)
            {
                // The kernel keeps what it needs once registered: the oom_control descriptor can close right after.
                File.WriteAllText(System.IO.Path.Combine(mem, "cgroup.event_control"), $"{eventFd} {control}");
                return eventFd;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Debug($"no OOM notification for {mem}: {e.Message}");
        }
        finally
        {
            if (control >= 0)
            {
                Libc.Close(control);
            }
        }
        Libc.Close(eventFd);
        return -1;
    }

    /// <inheritdoc/>
    public override IMessage ReadMetrics()
    {
        var metrics = new Metrics();
        if (DirectoryOf("pids") is { } pids)
        {
            metrics.Pids = new PidsStat
            {
                Current = ReadNumber(pids, "pids.current"),
                // containerd reports an unlimited pids.max as 0.
                Limit = ReadNumber(pids, "pids.max", max: 0),
            };
        }
        if (DirectoryOf("cpuacct") is { } acct)
        {
            var stat = ReadKeyed(acct, "cpuacct.stat");
            var usage = new CPUUsage
            {
                Total = ReadNumber(acct, "cpuacct.usage"),
                User = stat.GetValueOrDefault("user") * NanosecondsPerTick,
                Kernel = stat.GetValueOrDefault("system") * NanosecondsPerTick,
            };
            var perCpuPath = System.IO.Path.Combine(acct, "cpuacct.usage_percpu");
            if (File.Exists(perCpuPath))
            {
                foreach (var value in ReadText(perCpuPath).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (ulong.TryParse(value, out var ns))
                    {
                        usage.PerCpu.Add(ns);
                    }
                }
            }
            metrics.Cpu = new CPUStat { Usage = usage };
        }
        if (DirectoryOf("cpu") is { } cpu)
        {
            var stat = ReadKeyed(cpu, "cpu.stat");
            metrics.Cpu ??= new CPUStat();
            metrics.Cpu.Throttling = new Throttle
            {
                Periods = stat.GetValueOrDefault("nr_periods"),
                ThrottledPeriods = stat.GetValueOrDefault("nr_throttled"),
                ThrottledTime = stat.GetValueOrDefault("throttled_time"),
            };
        }
        if (DirectoryOf("memory") is { } mem)
        {
            metrics.Memory = ReadMemory(mem);
            var oom = ReadKeyed(mem, "memory.oom_control");
            metrics.MemoryOomControl = new MemoryOomControl
            {
                OomKillDisable = oom.GetValueOrDefault("oom_kill_disable"),
                UnderOom = oom.GetValueOrDefault("under_oom"),
                OomKill = oom.GetValueOrDefault("oom_kill"),
            };
        }
        return metrics;
    }

    private static MemoryStat ReadMemory(string dir)
    {
        var s = ReadKeyed(dir, "memory.stat");
        ulong V(string key) => s.GetValueOrDefault(key);
        return new MemoryStat
        {
            Cache = V("cache"),
            Rss = V("rss"),
            RssHuge = V("rss_huge"),
            MappedFile = V("mapped_file"),
            Dirty = V("dirty"),
            Writeback = V("writeback"),
            PgPgIn = V("pgpgin"),
            PgPgOut = V("pgpgout"),
            PgFault = V("pgfault"),
            PgMajFault = V("pgmajfault"),
            InactiveAnon = V("inactive_anon"),
            ActiveAnon = V("active_anon"),
            InactiveFile = V("inactive_file"),
            ActiveFile = V("active_file"),
            Unevictable = V("unevictable"),
            HierarchicalMemoryLimit = V("hierarchical_memory_limit"),
            HierarchicalSwapLimit = V("hierarchical_memsw_limit"),
            TotalCache = V("total_cache"),
            TotalRss = V("total_rss"),
            TotalRssHuge = V("total_rss_huge"),
            TotalMappedFile = V("total_mapped_file"),
            TotalDirty = V("total_dirty"),
            TotalWriteback = V("total_writeback"),
            TotalPgPgIn = V("total_pgpgin"),
            TotalPgPgOut = V("total_pgpgout"),
            TotalPgFault = V("total_pgfault"),
            TotalPgMajFault = V("total_pgmajfault"),
            TotalInactiveAnon = V("total_inactive_anon"),
            TotalActiveAnon = V("total_active_anon"),
            TotalInactiveFile = V("total_inactive_file"),
            TotalActiveFile = V("total_active_file"),
            TotalUnevictable = V("total_unevictable"),
            Usage = Entry(dir, "memory"),
            Swap = Entry(dir, "memory.memsw"),
            Kernel = Entry(dir, "memory.kmem"),
            KernelTcp = Entry(dir, "memory.kmem.tcp"),
        };
    }

    private static MemoryEntry Entry(string dir, string prefix) => new()
    {
        Usage = ReadNumber(dir, prefix + ".usage_in_bytes"),
        Max = ReadNumber(dir, prefix + ".max_usage_in_bytes"),
        Limit = ReadNumber(dir, prefix + ".limit_in_bytes"),
        Failcnt = ReadNumber(dir, prefix + ".failcnt"),
    };

    /// <inheritdoc/>
    private protected override List<string> MakeDirectories()
    {
        var created = new List<string>();
        try
        {
            foreach (var (controller, dir) in _dirs)
            {
                MakeBelow(_roots[controller], dir, created, controller == "cpuset" ? InheritCpuset : null);
            }
        }
        catch
        {
            RemoveCreated(created);
            throw;
        }
        return created;
    }

    // A new v1 cpuset starts with no CPUs and no memory nodes, and no process can join it until it has some
    // (ENOSPC): give it its parent's, as runc does. Levels that already exist are checked too, because two shims may
    // create the same parent at once and the one that did not make it can get there first.
    private static void InheritCpuset(string parent, string child)
    {
        foreach (var file in (string[])["cpuset.cpus", "cpuset.mems"])
        {
            var path = System.IO.Path.Combine(child, file);
            if (File.Exists(path) && ReadText(path).Trim().Length == 0)
            {
                Write(child, file, ReadText(System.IO.Path.Combine(parent, file)).Trim());
            }
        }
    }
}
