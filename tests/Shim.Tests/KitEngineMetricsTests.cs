using Containerd.Shimkit.Cgroups;
using Xunit;
using CgV1 = Containerd.Cgroups.V1;
using CgV2 = Containerd.Cgroups.V2;

namespace Shim.Tests;

/// <summary>EngineMetrics: an in-process instance's figures in containerd's own cgroup metrics types, decoded back.</summary>
public sealed class KitEngineMetricsTests
{
    private static readonly EngineUsage Usage = new(MemoryUsage: 2 << 16, MemoryLimit: 16 << 20, CpuNanos: 1_500_000_000,
        Periods: 30, ThrottledPeriods: 7, ThrottledNanos: 400_000_000);

    [Fact]
    public void V1_metrics_carry_memory_limit_cpu_and_throttling_under_containerds_type_url()
    {
        var any = EngineMetrics.Pack(CgroupVersion.V1, Usage);
        Assert.Equal("io.containerd.cgroups.v1.Metrics", any.TypeUrl);
        var m = CgV1.Metrics.Parser.ParseFrom(any.Value);
        Assert.Equal(131072UL, m.Memory.Usage.Usage);
        Assert.Equal(131072UL, m.Memory.Rss);
        Assert.Equal(16UL << 20, m.Memory.Usage.Limit);
        Assert.Equal(1_500_000_000UL, m.Cpu.Usage.Total);
        Assert.Equal(7UL, m.Cpu.Throttling.ThrottledPeriods);
        Assert.Equal(400_000_000UL, m.Cpu.Throttling.ThrottledTime);
    }

    [Fact]
    public void V2_metrics_carry_the_same_in_cgroup_v2_units()
    {
        var any = EngineMetrics.Pack(CgroupVersion.V2, Usage);
        Assert.Equal("io.containerd.cgroups.v2.Metrics", any.TypeUrl);
        var m = CgV2.Metrics.Parser.ParseFrom(any.Value);
        Assert.Equal(131072UL, m.Memory.Usage);
        Assert.Equal(16UL << 20, m.Memory.UsageLimit);
        Assert.Equal(1_500_000UL, m.Cpu.UsageUsec);
        Assert.Equal(7UL, m.Cpu.NrThrottled);
        Assert.Equal(400_000UL, m.Cpu.ThrottledUsec);
    }
}
