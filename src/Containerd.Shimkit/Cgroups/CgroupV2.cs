using Containerd.Cgroups.V2;
using Containerd.Shimkit.Oci;
using Google.Protobuf;
using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>A container's cgroup in the v2 unified hierarchy: one directory.</summary>
internal sealed class CgroupV2 : Cgroup
{
    /// <summary>The controllers a container's cgroup gets when its parents offer them.</summary>
    public static readonly IReadOnlyList<string> WantedControllers = ["cpu", "cpuset", "io", "memory", "pids"];

    private const ulong DefaultCpuPeriod = 100_000;

    private readonly string _root;
    private readonly string _dir;

    internal CgroupV2(string root, string path)
        : base(path)
    {
        _root = root;
        _dir = System.IO.Path.Join(root, path);
    }

    /// <inheritdoc/>
    public override CgroupVersion Version => CgroupVersion.V2;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Directories => [_dir];

    /// <inheritdoc/>
    public override string MetricsTypeUrl => Metrics.Descriptor.FullName;

    /// <inheritdoc/>
    private protected override string? MemoryDirectory => _dir;

    /// <inheritdoc/>
    private protected override string MemoryUsageFile => "memory.current";

    /// <summary>
    /// cgroup v1 <c>cpu.shares</c> (2-262144, default 1024) mapped onto v2 <c>cpu.weight</c> (1-10000, default 100)
    /// linearly, the mapping runc and crun use so a Kubernetes CPU request means the same on both. 0 means unset.
    /// </summary>
    public static ulong SharesToWeight(ulong shares) =>
        shares == 0 ? 0 : 1 + (Math.Clamp(shares, 2, 262_144) - 2) * 9_999 / 262_142;

    /// <inheritdoc/>
    public override void Apply(LinuxResources resources)
    {
        if (resources.Devices is { } devices)
        {
            // v2 has no device files and needs no controller for this: a BPF program on the directory decides.
            BpfDeviceFilter.Replace(_dir, DeviceFilterProgram.Build(DeviceRuleSet.FromSpec(devices)));
        }
        if (resources.Cpu is { } cpu)
        {
            if (!string.IsNullOrEmpty(cpu.Cpus))
            {
                Write(_dir, "cpuset.cpus", cpu.Cpus);
            }
            if (!string.IsNullOrEmpty(cpu.Mems))
            {
                Write(_dir, "cpuset.mems", cpu.Mems);
            }
            if (cpu.Shares is { } shares and > 0)
            {
                Write(_dir, "cpu.weight", Number(SharesToWeight(shares)));
            }
            if (cpu.Quota is < 0 or > 0 || cpu.Period is > 0)
            {
                // cpu.max holds both: "<quota|max> <period>". Keep what is there for the half not given.
                var current = File.Exists(System.IO.Path.Combine(_dir, "cpu.max"))
                    ? ReadText(System.IO.Path.Combine(_dir, "cpu.max")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    : [];
                var quota = cpu.Quota is { } q and not 0 ? (q < 0 ? "max" : Number(q)) : current.Length > 0 ? current[0] : "max";
                var period = cpu.Period is { } p and > 0 ? Number(p) : current.Length > 1 ? current[1] : Number(DefaultCpuPeriod);
                Write(_dir, "cpu.max", $"{quota} {period}");
            }
        }
        if (resources.Memory is { } memory)
        {
            ApplyMemory(memory);
        }
        if (resources.Pids is { } pids)
        {
            Write(_dir, "pids.max", pids.Limit > 0 ? Number(pids.Limit) : "max");
        }
    }

    private void ApplyMemory(LinuxMemory memory)
    {
        if (memory.Swap is { } swap and not 0)
        {
            // OCI's swap is memory+swap (the v1 memsw meaning); v2's memory.swap.max is swap alone.
            string value;
            if (swap < 0)
            {
                value = "max";
            }
            else if (memory.Limit is { } l and > 0)
            {
                if (swap < l)
                {
                    throw new ShimException(StatusCode.InvalidArgument,
                        $"linux.resources.memory: swap ({swap}) is memory+swap and must not be below the memory limit ({l})");
                }
                value = Number(swap - l);
            }
            else
            {
                throw new ShimException(StatusCode.InvalidArgument,
                    $"linux.resources.memory: swap ({swap}) needs a memory limit on cgroup v2, where swap is limited separately");
            }
            if (File.Exists(System.IO.Path.Combine(_dir, "memory.swap.max")))
            {
                Write(_dir, "memory.swap.max", value);
            }
        }
        if (memory.Limit is { } limit and not 0)
        {
            Write(_dir, "memory.max", limit < 0 ? "max" : Number(limit));
        }
        if (memory.Reservation is { } reservation and not 0)
        {
            Write(_dir, "memory.low", reservation < 0 ? "max" : Number(reservation));
        }
        if (memory.DisableOomKiller == true)
        {
            throw new ShimException(StatusCode.InvalidArgument,
                "linux.resources.memory.disableOOMKiller cannot be honoured on cgroup v2, which has no such switch");
        }
    }

    /// <inheritdoc/>
    public override ulong OomKillCount() => ReadKeyed(_dir, "memory.events").GetValueOrDefault("oom_kill");

    /// <inheritdoc/>
    internal override int OpenOomNotification()
    {
        // The kernel signals a modification of memory.events after each event it counts there.
        var events = System.IO.Path.Combine(_dir, "memory.events");
        var fd = Libc.InotifyInit1(Libc.IN_CLOEXEC | Libc.IN_NONBLOCK);
        if (fd < 0)
        {
            return -1;
        }
        if (!File.Exists(events) || Libc.InotifyAddWatch(fd, events, Libc.IN_MODIFY) < 0)
        {
            Libc.Close(fd);
            return -1;
        }
        return fd;
    }

    /// <inheritdoc/>
    public override IMessage ReadMetrics()
    {
        var cpu = ReadKeyed(_dir, "cpu.stat");
        var events = ReadKeyed(_dir, "memory.events");
        return new Metrics
        {
            Pids = new PidsStat
            {
                Current = ReadNumber(_dir, "pids.current"),
                Limit = ReadNumber(_dir, "pids.max", max: 0),
            },
            Cpu = new CPUStat
            {
                UsageUsec = cpu.GetValueOrDefault("usage_usec"),
                UserUsec = cpu.GetValueOrDefault("user_usec"),
                SystemUsec = cpu.GetValueOrDefault("system_usec"),
                NrPeriods = cpu.GetValueOrDefault("nr_periods"),
                NrThrottled = cpu.GetValueOrDefault("nr_throttled"),
                ThrottledUsec = cpu.GetValueOrDefault("throttled_usec"),
                NrBursts = cpu.GetValueOrDefault("nr_bursts"),
                BurstUsec = cpu.GetValueOrDefault("burst_usec"),
            },
            Memory = ReadMemory(),
            MemoryEvents = new MemoryEvents
            {
                Low = events.GetValueOrDefault("low"),
                High = events.GetValueOrDefault("high"),
                Max = events.GetValueOrDefault("max"),
                Oom = events.GetValueOrDefault("oom"),
                OomKill = events.GetValueOrDefault("oom_kill"),
                OomGroupKill = events.GetValueOrDefault("oom_group_kill"),
            },
        };
    }

    private MemoryStat ReadMemory()
    {
        var s = ReadKeyed(_dir, "memory.stat");
        ulong V(string key) => s.GetValueOrDefault(key);
        return new MemoryStat
        {
            Anon = V("anon"),
            File = V("file"),
            KernelStack = V("kernel_stack"),
            Slab = V("slab"),
            Sock = V("sock"),
            Shmem = V("shmem"),
            FileMapped = V("file_mapped"),
            FileDirty = V("file_dirty"),
            FileWriteback = V("file_writeback"),
            AnonThp = V("anon_thp"),
            InactiveAnon = V("inactive_anon"),
            ActiveAnon = V("active_anon"),
            InactiveFile = V("inactive_file"),
            ActiveFile = V("active_file"),
            Unevictable = V("unevictable"),
            SlabReclaimable = V("slab_reclaimable"),
            SlabUnreclaimable = V("slab_unreclaimable"),
            Pgfault = V("pgfault"),
            Pgmajfault = V("pgmajfault"),
            WorkingsetNodereclaim = V("workingset_nodereclaim"),
            Pgrefill = V("pgrefill"),
            Pgscan = V("pgscan"),
            Pgsteal = V("pgsteal"),
            Pgactivate = V("pgactivate"),
            Pgdeactivate = V("pgdeactivate"),
            Pglazyfree = V("pglazyfree"),
            Pglazyfreed = V("pglazyfreed"),
            ThpFaultAlloc = V("thp_fault_alloc"),
            ThpCollapseAlloc = V("thp_collapse_alloc"),
            WorkingsetRefaultAnon = V("workingset_refault_anon"),
            WorkingsetRefaultFile = V("workingset_refault_file"),
            WorkingsetActivateAnon = V("workingset_activate_anon"),
            WorkingsetActivateFile = V("workingset_activate_file"),
            Usage = ReadNumber(_dir, "memory.current"),
            UsageLimit = ReadNumber(_dir, "memory.max"),
            SwapUsage = ReadNumber(_dir, "memory.swap.current"),
            SwapLimit = ReadNumber(_dir, "memory.swap.max"),
            MaxUsage = ReadNumber(_dir, "memory.peak"),
            SwapMaxUsage = ReadNumber(_dir, "memory.swap.peak"),
        };
    }

    /// <inheritdoc/>
    private protected override List<string> MakeDirectories()
    {
        var created = new List<string>();
        // Each ancestor must delegate the controllers to its children before the leaf can use them.
        var available = ReadWords(System.IO.Path.Combine(_root, "cgroup.controllers"));
        var relative = System.IO.Path.GetRelativePath(_root, _dir).Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = _root;
        try
        {
            foreach (var part in relative)
            {
                Delegate(current, ref available);
                MakeBelow(current, System.IO.Path.Combine(current, part), created);
                current = System.IO.Path.Combine(current, part);
            }
        }
        catch
        {
            RemoveCreated(created);
            throw;
        }
        return created;
    }

    private static void Delegate(string dir, ref HashSet<string> available)
    {
        var here = System.IO.Path.Combine(dir, "cgroup.controllers");
        if (File.Exists(here))
        {
            available = ReadWords(here);
        }
        var enabled = ReadWords(System.IO.Path.Combine(dir, "cgroup.subtree_control"));
        var offered = available;
        var missing = WantedControllers.Where(c => offered.Contains(c) && !enabled.Contains(c)).ToList();
        if (missing.Count > 0)
        {
            Write(dir, "cgroup.subtree_control", string.Join(' ', missing.Select(c => "+" + c)));
        }
        available = [.. available.Intersect(WantedControllers.Where(c => enabled.Contains(c) || missing.Contains(c)))];
    }

    private static HashSet<string> ReadWords(string path) =>
        File.Exists(path)
            ? [.. ReadText(path).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(w => w.TrimStart('+'))]
            : [];
}
