using Containerd.Shim.Wasm;
using Containerd.Shimkit.Oci;
using Xunit;

namespace Shim.Tests;

/// <summary>The token bucket that stands in for the cgroup's CPU quota in shared mode, over a clock the test moves.</summary>
public sealed class CpuQuotaTests
{
    private const long Ms = 1_000_000;
    private long _now;

    private CpuQuota Quota(long? quotaUs, ulong? periodUs = 100_000) =>
        new(quotaUs is null ? null : new LinuxCpu { Quota = quotaUs, Period = periodUs }, () => _now);

    [Fact]
    public void Without_a_quota_nothing_pauses_and_the_time_is_still_counted()
    {
        var quota = Quota(null);
        _now += 100 * Ms;
        Assert.Equal(0, quota.Charge(100 * Ms));
        Assert.Equal(100 * Ms, quota.UsedNanos);
        Assert.Equal((0UL, 0UL, 0UL), quota.Throttling());
    }

    [Fact]
    public void A_thread_over_a_fifth_of_a_cpu_pauses_for_what_it_overspent_divided_by_the_share()
    {
        var quota = Quota(20_000);
        // 100 ms of wall time refill 20 ms; a thread that used all 100 ms overspent by 80 ms: 400 ms of pause.
        _now += 100 * Ms;
        Assert.Equal(400 * Ms, quota.Charge(100 * Ms));
        // After the pause the bucket is back at zero: 100 ms of work asks for 400 ms again.
        _now += 400 * Ms;
        Assert.Equal(0, quota.Charge(0));
        _now += 100 * Ms;
        Assert.Equal(400 * Ms, quota.Charge(100 * Ms));
        var (periods, throttled, throttledNs) = quota.Throttling();
        Assert.Equal(6UL, periods);
        Assert.Equal(2UL, throttled);
        Assert.Equal(800UL * Ms, throttledNs);
    }

    [Fact]
    public void The_threads_of_one_container_share_the_bucket()
    {
        var quota = Quota(50_000);
        // Two threads each using 50 ms in 100 ms of wall time use a whole CPU against half of one: the first is
        // within the 50 ms refilled, the second pays for both.
        _now += 100 * Ms;
        Assert.Equal(0, quota.Charge(50 * Ms));
        Assert.Equal(100 * Ms, quota.Charge(50 * Ms));
    }

    [Fact]
    public void An_idle_container_banks_one_period_of_quota_at_most()
    {
        var quota = Quota(20_000);
        _now += 10_000 * Ms;
        // 20 ms banked, not 2 s: a burst of 30 ms overspends by 10 ms.
        Assert.Equal(50 * Ms, quota.Charge(30 * Ms));
    }

    [Fact]
    public void An_update_changes_the_quota_and_minus_one_removes_it()
    {
        var quota = Quota(20_000);
        quota.Set(new LinuxCpu { Quota = -1 });
        Assert.Equal(-1, quota.QuotaMicros);
        Assert.Equal(100_000, quota.PeriodMicros);
        _now += 100 * Ms;
        Assert.Equal(0, quota.Charge(100 * Ms));
        // A period alone keeps the quota; a quota alone keeps the period.
        quota.Set(new LinuxCpu { Quota = 10_000 });
        quota.Set(new LinuxCpu { Period = 50_000 });
        Assert.Equal(10_000, quota.QuotaMicros);
        Assert.Equal(50_000, quota.PeriodMicros);
        _now += 50 * Ms;
        // A fifth of a CPU now: 50 ms of wall time refill 10 ms, so 50 ms of work overspend by 40 ms.
        Assert.Equal(200 * Ms, quota.Charge(50 * Ms));
    }
}
