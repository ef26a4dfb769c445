namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// Watches a cgroup's OOM-kill counter (v1 <c>memory.oom_control</c>, v2 <c>memory.events</c>) and raises
/// <see cref="OomKilled"/> once per new kill. It polls: one small read per interval per container is cheaper than a
/// thread blocked on an eventfd each, and <see cref="Check"/> lets the owner look once more when its process exits,
/// so a kill is never reported after the exit it caused.
/// </summary>
public sealed class CgroupOomWatcher : IDisposable
{
    private readonly Cgroup _cgroup;
    private readonly Timer _timer;
    private readonly Lock _gate = new();
    private ulong _seen;
    private bool _disposed;

    /// <summary>Starts watching <paramref name="cgroup"/>; kills before this call are not reported.</summary>
    public CgroupOomWatcher(Cgroup cgroup, TimeSpan interval)
    {
        _cgroup = cgroup;
        _seen = SafeCount();
        _timer = new Timer(_ => Check(), null, interval, interval);
    }

    /// <summary>Raised, on a timer thread or the caller of <see cref="Check"/>, once per OOM kill.</summary>
    public event Action? OomKilled;

    /// <summary>Reads the counter now and raises <see cref="OomKilled"/> for each kill not yet reported.</summary>
    public void Check()
    {
        ulong fresh;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            var count = SafeCount();
            fresh = count > _seen ? count - _seen : 0;
            _seen = Math.Max(_seen, count);
        }
        for (ulong i = 0; i < fresh; i++)
        {
            OomKilled?.Invoke();
        }
    }

    /// <summary>Stops watching.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        _timer.Dispose();
    }

    private ulong SafeCount()
    {
        try
        {
            return _cgroup.OomKillCount();
        }
        catch (ShimException)
        {
            // Removed under us (the task is being deleted): nothing more to report.
            return _seen;
        }
    }
}
