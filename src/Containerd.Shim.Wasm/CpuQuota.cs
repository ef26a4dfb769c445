using System.Diagnostics;
using Containerd.Shimkit.Oci;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A container's CPU quota where no cgroup holds its threads (shared mode): a token bucket filled at quota/period of
/// the wall time, holding one period's quota at most, and drained by the CPU time its guest threads report. A thread
/// whose charge leaves the bucket below zero pauses until it is back at zero, so the container's threads together
/// use quota/period of one CPU, however many of them run. Thread-safe; the caller does the pausing, so a kill can
/// cut it short.
/// </summary>
public sealed class CpuQuota
{
    private const long DefaultPeriodUs = 100_000;

    private readonly Lock _gate = new();
    private readonly Func<long> _clock;
    private long _quotaUs;
    private long _periodUs = DefaultPeriodUs;
    private long _budgetNs;
    private long _lastWallNs;
    private long _quotaWallNs, _usedNs, _pauses, _pausedNs;

    /// <summary>A quota read from the spec's <c>linux.resources.cpu</c> (null: none).</summary>
    public CpuQuota(LinuxCpu? cpu)
        : this(cpu, () => (long)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency)))
    {
    }

    /// <summary>A quota over a clock of nanoseconds of wall time (tests).</summary>
    public CpuQuota(LinuxCpu? cpu, Func<long> wallClockNanos)
    {
        _clock = wallClockNanos;
        _lastWallNs = wallClockNanos();
        Set(cpu);
    }

    /// <summary>Microseconds of CPU time per <see cref="PeriodMicros"/>; 0 or less: no quota.</summary>
    public long QuotaMicros => Volatile.Read(ref _quotaUs);

    /// <summary>The period of the quota, in microseconds.</summary>
    public long PeriodMicros => Volatile.Read(ref _periodUs);

    /// <summary>
    /// Takes the spec's or an Update's quota and period; a field left out keeps its value (as the cgroup would).
    /// A quota of -1, 0 or less removes the quota.
    /// </summary>
    public void Set(LinuxCpu? cpu)
    {
        if (cpu is null)
        {
            return;
        }
        lock (_gate)
        {
            if (cpu.Period is > 0 and var period)
            {
                _periodUs = (long)Math.Min(period, (ulong)(long.MaxValue / 1000));
            }
            if (cpu.Quota is { } quota)
            {
                _quotaUs = Math.Min(quota, long.MaxValue / 1000);
            }
        }
    }

    /// <summary>
    /// Charges <paramref name="usedNanos"/> of CPU time one thread used since its last charge; returns how long
    /// that thread must pause, in nanoseconds (0: within the quota).
    /// </summary>
    public long Charge(long usedNanos)
    {
        var now = _clock();
        lock (_gate)
        {
            var elapsed = Math.Max(0, now - _lastWallNs);
            _lastWallNs = now;
            _usedNs += Math.Max(0, usedNanos);
            if (_quotaUs <= 0 || _periodUs <= 0)
            {
                _budgetNs = 0;
                return 0;
            }
            _quotaWallNs += elapsed;
            var share = (double)_quotaUs / _periodUs;
            _budgetNs = Math.Min(_budgetNs + (long)(elapsed * share), _quotaUs * 1000) - Math.Max(0, usedNanos);
            if (_budgetNs >= 0)
            {
                return 0;
            }
            var pause = (long)Math.Min(-_budgetNs / share, long.MaxValue / 2);
            _pauses++;
            _pausedNs += pause;
            return pause;
        }
    }

    /// <summary>CPU time charged so far, in nanoseconds.</summary>
    public long UsedNanos
    {
        get
        {
            lock (_gate)
            {
                return _usedNs;
            }
        }
    }

    /// <summary>
    /// What the cgroup's <c>cpu.stat</c> would say: periods of wall time elapsed under a quota, how many times a
    /// thread was paused, and for how long in total (the sum over threads).
    /// </summary>
    public (ulong Periods, ulong Throttled, ulong ThrottledNanos) Throttling()
    {
        lock (_gate)
        {
            var periods = _periodUs > 0 ? _quotaWallNs / (_periodUs * 1000) : 0;
            return ((ulong)periods, (ulong)_pauses, (ulong)_pausedNs);
        }
    }
}
