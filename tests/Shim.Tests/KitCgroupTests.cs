using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;
using Xunit.Abstractions;
using V1 = Containerd.Cgroups.V1;
using V2 = Containerd.Cgroups.V2;

namespace Shim.Tests;

/// <summary>
/// The kit's cgroup code against fixture trees laid out like <c>/sys/fs/cgroup</c> (v2 cannot be tested for real on
/// a hybrid host), plus one real v1 cgroup on this host.
/// </summary>
public sealed class KitCgroupTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cgroup-fixture-").FullName;
    private readonly ITestOutputHelper _output;

    public KitCgroupTests(ITestOutputHelper output) => _output = output;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Hybrid_host_is_v1_with_each_controller_at_its_mount()
    {
        string[] mountinfo =
        [
            "25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755",
            "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
            "28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
            "29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory",
            "30 25 0:27 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd",
        ];
        var h = CgroupHierarchy.Detect(mountinfo);
        Assert.Equal(CgroupVersion.V1, h.Version);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", h.Controllers["cpu"]);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", h.Controllers["cpuacct"]);
        Assert.Equal("/sys/fs/cgroup/memory", h.Controllers["memory"]);
        Assert.False(h.Controllers.ContainsKey("name=systemd"));
    }

    [Fact]
    public void Unified_sys_fs_cgroup_is_v2()
    {
        var h = CgroupHierarchy.Detect(["35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"]);
        Assert.Equal(CgroupVersion.V2, h.Version);
        Assert.Equal("/sys/fs/cgroup", h.UnifiedRoot);
    }

    [Fact]
    public void This_host_is_detected()
    {
        var h = CgroupHierarchy.Host;
        _output.WriteLine($"host: {h.Version} {h.UnifiedRoot} {string.Join(' ', h.Controllers.Select(c => c.Key + "=" + c.Value))}");
        if (File.ReadAllText("/proc/mounts").Contains(" /sys/fs/cgroup cgroup2 ", StringComparison.Ordinal))
        {
            Assert.Equal(CgroupVersion.V2, h.Version);
        }
        else
        {
            Assert.Equal(CgroupVersion.V1, h.Version);
            Assert.True(h.Controllers.ContainsKey("memory"));
        }
    }

    [Theory]
    [InlineData(null, "/default/web")]
    [InlineData("", "/default/web")]
    [InlineData("/k8s.io/abc", "/k8s.io/abc")]
    [InlineData("//a//b/", "/a/b")]
    [InlineData("pods/web", "pods/web")]
    public void CgroupsPath_in_cgroupfs_form_resolves(string? cgroupsPath, string expected) =>
        Assert.Equal(expected, CgroupPath.Resolve(cgroupsPath, "default", "web"));

    [Fact]
    public void Systemd_form_is_refused_with_a_clear_error()
    {
        var e = Assert.Throws<ShimException>(() => CgroupPath.Resolve("system.slice:cri-containerd:abc", "k8s.io", "abc"));
        Assert.Equal(StatusCode.Unimplemented, e.Code);
        Assert.Contains("systemd cgroup driver is not supported yet", e.Message);
        Assert.Contains("system.slice:cri-containerd:abc", e.Message);
    }

    [Fact]
    public void Dot_dot_in_the_path_is_refused()
    {
        var e = Assert.Throws<ShimException>(() => CgroupPath.Resolve("/default/../../escape", "default", "web"));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
    }

    [Theory]
    [InlineData(0UL, 0UL)]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(262144UL, 10000UL)]
    public void Shares_map_onto_weight_as_runc_maps_them(ulong shares, ulong weight) =>
        Assert.Equal(weight, CgroupV2.SharesToWeight(shares));

    [Fact]
    public void V2_create_delegates_controllers_and_writes_the_limits()
    {
        Put("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
        Put("cgroup.subtree_control", "");
        Put("default/c1/memory.swap.max", "max\n");
        var resources = new LinuxResources
        {
            Memory = new LinuxMemory { Limit = 64 << 20, Swap = 96 << 20, Reservation = 32 << 20 },
            Cpu = new LinuxCpu { Shares = 1024, Quota = 50_000, Period = 100_000, Cpus = "0", Mems = "0" },
            Pids = new LinuxPids { Limit = 32 },
        };
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c1", resources);

        Assert.Equal(CgroupVersion.V2, cgroup.Version);
        Assert.Equal([Path.Combine(_root, "default/c1")], cgroup.Directories);
        Assert.Equal("+cpu +cpuset +io +memory +pids", Get("cgroup.subtree_control"));
        Assert.Equal("+cpu +cpuset +io +memory +pids", Get("default/cgroup.subtree_control"));
        Assert.Equal("67108864", Get("default/c1/memory.max"));
        Assert.Equal("33554432", Get("default/c1/memory.swap.max"));
        Assert.Equal("33554432", Get("default/c1/memory.low"));
        Assert.Equal("39", Get("default/c1/cpu.weight"));
        Assert.Equal("50000 100000", Get("default/c1/cpu.max"));
        Assert.Equal("0", Get("default/c1/cpuset.cpus"));
        Assert.Equal("32", Get("default/c1/pids.max"));

        cgroup.AddProcess(4242);
        Assert.Equal("4242", Get("default/c1/cgroup.procs"));
    }

    [Fact]
    public void V2_update_changes_only_what_it_names()
    {
        Put("cgroup.controllers", "cpu memory pids\n");
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c2",
            new LinuxResources { Memory = new LinuxMemory { Limit = 64 << 20 }, Cpu = new LinuxCpu { Quota = 20_000, Period = 50_000 } });
        Assert.Equal("20000 50000", Get("default/c2/cpu.max"));

        var update = CgroupResources.Unpack(Containerd.Api.Client.RuntimeSpecAny.LinuxResources(
            """{"memory":{"limit":134217728},"cpu":{"quota":-1}}"""), "c2");
        cgroup.Apply(update);
        Assert.Equal("134217728", Get("default/c2/memory.max"));
        // The period stays: only the quota was given.
        Assert.Equal("max 50000", Get("default/c2/cpu.max"));
    }

    [Fact]
    public void V2_swap_below_the_memory_limit_is_refused()
    {
        Put("cgroup.controllers", "memory\n");
        var e = Assert.Throws<ShimException>(() => Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c3",
            new LinuxResources { Memory = new LinuxMemory { Limit = 64 << 20, Swap = 32 << 20 } }));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("swap", e.Message);
        // Nothing left half-made.
        Assert.False(Directory.Exists(Path.Combine(_root, "default/c3")));
    }

    [Fact]
    public void V2_stats_are_containerds_v2_metrics()
    {
        Put("cgroup.controllers", "cpu memory pids\n");
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c4", null);
        Put("default/c4/memory.current", "5242880\n");
        Put("default/c4/memory.max", "max\n");
        Put("default/c4/memory.peak", "7340032\n");
        Put("default/c4/memory.stat", "anon 4194304\nfile 1048576\npgfault 1200\nworkingset_refault_anon 3\n");
        Put("default/c4/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n");
        Put("default/c4/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 300\n");
        Put("default/c4/pids.current", "3\n");
        Put("default/c4/pids.max", "max\n");

        var any = cgroup.Stats();
        Assert.Equal("io.containerd.cgroups.v2.Metrics", any.TypeUrl);
        var m = V2.Metrics.Parser.ParseFrom(any.Value);
        Assert.Equal(5242880UL, m.Memory.Usage);
        Assert.Equal(ulong.MaxValue, m.Memory.UsageLimit);
        Assert.Equal(7340032UL, m.Memory.MaxUsage);
        Assert.Equal(4194304UL, m.Memory.Anon);
        Assert.Equal(1200UL, m.Memory.Pgfault);
        Assert.Equal(3UL, m.Memory.WorkingsetRefaultAnon);
        Assert.Equal(1500UL, m.Cpu.UsageUsec);
        Assert.Equal(1000UL, m.Cpu.UserUsec);
        Assert.Equal(500UL, m.Cpu.SystemUsec);
        Assert.Equal(2UL, m.Cpu.NrThrottled);
        Assert.Equal(300UL, m.Cpu.ThrottledUsec);
        Assert.Equal(3UL, m.Pids.Current);
        Assert.Equal(0UL, m.Pids.Limit);
        Assert.Equal(1UL, m.MemoryEvents.OomKill);
        Assert.Equal(4UL, m.MemoryEvents.Max);
    }

    [Fact]
    public void V2_oom_kills_are_reported_once_each()
    {
        Put("cgroup.controllers", "memory\n");
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c5", null);
        Put("default/c5/memory.events", "oom 1\noom_kill 1\n");
        // An hour's poll interval: only the inotify watch of memory.events can report the kills in time.
        using var watcher = new CgroupOomWatcher(cgroup, TimeSpan.FromHours(1));
        Assert.True(watcher.Notified, "no inotify watch on memory.events");
        var kills = 0;
        watcher.OomKilled += () => Interlocked.Increment(ref kills);
        watcher.Check();
        Assert.Equal(0, kills);
        Put("default/c5/memory.events", "oom 3\noom_kill 3\n");
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref kills) < 2 && DateTime.UtcNow < until)
        {
            Thread.Sleep(20);
        }
        Assert.Equal(2, Volatile.Read(ref kills));
        watcher.Check();
        watcher.Check();
        Assert.Equal(2, Volatile.Read(ref kills));
    }

    [Fact]
    public void V2_watcher_without_memory_events_polls()
    {
        Put("cgroup.controllers", "memory\n");
        var cgroup = Cgroup.Create(CgroupHierarchy.V2(_root), "/default/c8", null);
        using var watcher = new CgroupOomWatcher(cgroup, TimeSpan.FromMilliseconds(50));
        Assert.False(watcher.Notified);
        var kills = 0;
        watcher.OomKilled += () => Interlocked.Increment(ref kills);
        Put("default/c8/memory.events", "oom 1\noom_kill 1\n");
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref kills) < 1 && DateTime.UtcNow < until)
        {
            Thread.Sleep(20);
        }
        Assert.Equal(1, Volatile.Read(ref kills));
    }

    [Fact]
    public void V1_create_writes_each_controller_and_stats_are_containerds_v1_metrics()
    {
        var controllers = new Dictionary<string, string>();
        foreach (var c in new[] { "memory", "cpu", "cpuacct", "cpuset", "pids" })
        {
            controllers[c] = Path.Combine(_root, c);
            Directory.CreateDirectory(controllers[c]);
        }
        Put("memory/default/c6/memory.limit_in_bytes", "9223372036854771712\n");
        Put("memory/default/c6/memory.memsw.limit_in_bytes", "9223372036854771712\n");
        var cgroup = Cgroup.Create(CgroupHierarchy.V1(controllers), "/default/c6", new LinuxResources
        {
            Memory = new LinuxMemory { Limit = 64 << 20, Swap = 128 << 20 },
            Cpu = new LinuxCpu { Shares = 512, Quota = 25_000, Period = 50_000 },
            Pids = new LinuxPids { Limit = 0 },
        });
        Assert.Equal(5, cgroup.Directories.Count);
        Assert.Equal("67108864", Get("memory/default/c6/memory.limit_in_bytes"));
        Assert.Equal("134217728", Get("memory/default/c6/memory.memsw.limit_in_bytes"));
        Assert.Equal("512", Get("cpu/default/c6/cpu.shares"));
        Assert.Equal("50000", Get("cpu/default/c6/cpu.cfs_period_us"));
        Assert.Equal("25000", Get("cpu/default/c6/cpu.cfs_quota_us"));
        Assert.Equal("max", Get("pids/default/c6/pids.max"));

        cgroup.AddProcess(77);
        Assert.All(cgroup.Directories, d => Assert.Equal("77", File.ReadAllText(Path.Combine(d, "cgroup.procs"))));

        Put("memory/default/c6/memory.usage_in_bytes", "3145728\n");
        Put("memory/default/c6/memory.max_usage_in_bytes", "4194304\n");
        Put("memory/default/c6/memory.stat", "cache 1024\nrss 2048\npgpgin 5\ntotal_rss 4096\nhierarchical_memory_limit 67108864\n");
        Put("memory/default/c6/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        Put("cpuacct/default/c6/cpuacct.usage", "123456789\n");
        Put("cpuacct/default/c6/cpuacct.stat", "user 5\nsystem 3\n");
        Put("cpuacct/default/c6/cpuacct.usage_percpu", "100 200 \n");
        Put("cpu/default/c6/cpu.stat", "nr_periods 7\nnr_throttled 1\nthrottled_time 999\n");
        Put("pids/default/c6/pids.current", "2\n");

        var any = cgroup.Stats();
        Assert.Equal("io.containerd.cgroups.v1.Metrics", any.TypeUrl);
        var m = V1.Metrics.Parser.ParseFrom(any.Value);
        Assert.Equal(3145728UL, m.Memory.Usage.Usage);
        Assert.Equal(4194304UL, m.Memory.Usage.Max);
        Assert.Equal(67108864UL, m.Memory.Usage.Limit);
        Assert.Equal(134217728UL, m.Memory.Swap.Limit);
        Assert.Equal(2048UL, m.Memory.Rss);
        Assert.Equal(5UL, m.Memory.PgPgIn);
        Assert.Equal(4096UL, m.Memory.TotalRss);
        Assert.Equal(123456789UL, m.Cpu.Usage.Total);
        Assert.Equal(50_000_000UL, m.Cpu.Usage.User);
        Assert.Equal(30_000_000UL, m.Cpu.Usage.Kernel);
        Assert.Equal([100UL, 200UL], m.Cpu.Usage.PerCpu);
        Assert.Equal(1UL, m.Cpu.Throttling.ThrottledPeriods);
        Assert.Equal(999UL, m.Cpu.Throttling.ThrottledTime);
        Assert.Equal(2UL, m.Pids.Current);
        Assert.Equal(0UL, m.Pids.Limit);
        Assert.Equal(2UL, m.MemoryOomControl.OomKill);
        Assert.Equal(2UL, cgroup.OomKillCount());
    }

    [Fact]
    public void Update_with_another_type_of_resources_is_refused()
    {
        var e = Assert.Throws<ShimException>(() => CgroupResources.Unpack(
            new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources" }, "x"));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("WindowsResources", e.Message);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Real_v1_cgroup_holds_a_process_limits_it_measures_it_and_goes_away()
    {
        var host = CgroupHierarchy.Host;
        if (host.Version != CgroupVersion.V1)
        {
            _output.WriteLine("SKIPPED: this host is not cgroup v1 (the v2 code is covered by the fixture tests)");
            return;
        }
        var path = $"/shim-tests/kit-{Guid.NewGuid().ToString("N")[..8]}";
        var cgroup = Cgroup.Create(host, path, new LinuxResources
        {
            Memory = new LinuxMemory { Limit = 256 << 20 },
            Cpu = new LinuxCpu { Quota = 30_000, Period = 100_000, Shares = 256 },
            Pids = new LinuxPids { Limit = 20 },
        });
        using var sleeper = System.Diagnostics.Process.Start("sleep", "60");
        try
        {
            cgroup.AddProcess(sleeper.Id);
            var own = File.ReadAllText($"/proc/{sleeper.Id}/cgroup");
            Assert.Contains($":memory:{path}\n", own);
            Assert.Contains($":pids:{path}\n", own);
            Assert.Equal([sleeper.Id], cgroup.Processes());
            var cpu = Path.Join(host.Controllers["cpu"], path);
            Assert.Equal("30000", File.ReadAllText(Path.Combine(cpu, "cpu.cfs_quota_us")).Trim());
            Assert.Equal("268435456", File.ReadAllText(Path.Join(host.Controllers["memory"], path, "memory.limit_in_bytes")).Trim());

            var m = V1.Metrics.Parser.ParseFrom(cgroup.Stats().Value);
            Assert.Equal(268435456UL, m.Memory.Usage.Limit);
            Assert.Equal(1UL, m.Pids.Current);
            Assert.Equal(20UL, m.Pids.Limit);
            _output.WriteLine($"memory usage {m.Memory.Usage.Usage}, cpu total {m.Cpu.Usage.Total} ns");

            cgroup.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 512 << 20 } });
            Assert.Equal("536870912", File.ReadAllText(Path.Join(host.Controllers["memory"], path, "memory.limit_in_bytes")).Trim());
        }
        finally
        {
            sleeper.Kill();
            await sleeper.WaitForExitAsync();
            cgroup.Delete(TimeSpan.FromSeconds(10));
            foreach (var mount in host.Controllers.Values.Distinct())
            {
                TryRemove(Path.Join(mount, "/shim-tests"));
            }
        }
        Assert.All(cgroup.Directories, d => Assert.False(Directory.Exists(d), $"{d} remains"));
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Real_v1_cpuset_parent_left_empty_by_a_concurrent_creator_is_filled_before_a_process_joins()
    {
        var host = CgroupHierarchy.Host;
        if (host.Version != CgroupVersion.V1 || !host.Controllers.TryGetValue("cpuset", out var cpusetRoot))
        {
            _output.WriteLine("SKIPPED: this host has no v1 cpuset hierarchy");
            return;
        }
        // Another shim has just made the shared parent and not yet copied its CPUs in: the state that made a
        // parallel stress run fail with ENOSPC when a process joined the child.
        var parentName = $"shim-tests-cpuset-{Guid.NewGuid().ToString("N")[..8]}";
        var parent = Path.Join(cpusetRoot, parentName);
        Directory.CreateDirectory(parent);
        Assert.Equal("", File.ReadAllText(Path.Combine(parent, "cpuset.cpus")).Trim());
        var cgroup = Cgroup.Create(host, $"/{parentName}/c", new LinuxResources());
        using var sleeper = System.Diagnostics.Process.Start("sleep", "60");
        try
        {
            cgroup.AddProcess(sleeper.Id);
            Assert.Contains($":cpuset:/{parentName}/c\n", File.ReadAllText($"/proc/{sleeper.Id}/cgroup"));
            Assert.Equal(File.ReadAllText(Path.Combine(cpusetRoot, "cpuset.cpus")).Trim(),
                File.ReadAllText(Path.Combine(parent, "cpuset.cpus")).Trim());
        }
        finally
        {
            sleeper.Kill();
            await sleeper.WaitForExitAsync();
            cgroup.Delete(TimeSpan.FromSeconds(10));
            foreach (var mount in host.Controllers.Values.Distinct())
            {
                TryRemove(Path.Join(mount, parentName));
            }
        }
        Assert.False(Directory.Exists(parent), $"{parent} remains");
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Real_v1_oom_kill_is_reported_by_the_kernels_notification_not_a_poll()
    {
        var host = CgroupHierarchy.Host;
        if (host.Version != CgroupVersion.V1)
        {
            _output.WriteLine("SKIPPED: this host is not cgroup v1 (v2's inotify watch is covered by the fixture test)");
            return;
        }
        var path = $"/shim-tests/oom-{Guid.NewGuid().ToString("N")[..8]}";
        var cgroup = Cgroup.Create(host, path, new LinuxResources { Memory = new LinuxMemory { Limit = 16 << 20 } });
        // An hour between polls: the kill can only come through the eventfd.
        var watcher = new CgroupOomWatcher(cgroup, TimeSpan.FromHours(1));
        var killed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.OomKilled += () => killed.TrySetResult();
        using var hog = System.Diagnostics.Process.Start("sh", ["-c", "sleep 0.5; exec tail /dev/zero"]);
        try
        {
            Assert.True(watcher.Notified, "no OOM eventfd registered");
            cgroup.AddProcess(hog.Id);
            await killed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await hog.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(137, hog.ExitCode);
        }
        finally
        {
            watcher.Dispose();
            if (!hog.HasExited)
            {
                hog.Kill();
                await hog.WaitForExitAsync();
            }
            cgroup.Delete(TimeSpan.FromSeconds(10));
            foreach (var mount in host.Controllers.Values.Distinct())
            {
                TryRemove(Path.Join(mount, "/shim-tests"));
            }
        }
    }

    private static void TryRemove(string dir)
    {
        try
        {
            Directory.Delete(dir);
        }
        catch (IOException)
        {
            // Another test's cgroup is still in it.
        }
    }

    private void Put(string relative, string content)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    private string Get(string relative) => File.ReadAllText(Path.Combine(_root, relative)).Trim();
}
