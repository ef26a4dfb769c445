namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// Watches a cgroup's OOM-kill counter (v1 <c>memory.oom_control</c>, v2 <c>memory.events</c>) and raises
/// <see cref="OomKilled"/> once per new kill. It waits for the kernel's notification (a v1 OOM eventfd, an inotify
/// watch of v2's <c>memory.events</c>) on the process's one cgroup event thread, so an idle container costs nothing;
/// only where no notification can be set up does it poll. <see cref="Check"/> lets the owner look once more when
/// its process exits, so a kill is never reported after the exit it caused.
/// </summary>
public sealed class CgroupOomWatcher : IDisposable
{
    // v1 signals before the OOM killer has picked and counted its victim: look again a little later.
    private static readonly TimeSpan Recheck = TimeSpan.FromMilliseconds(250);

    private readonly Cgroup _cgroup;
    private readonly Timer _timer;
    private readonly int _notification;
    private readonly Lock _gate = new();
    private ulong _seen;
    private bool _disposed;

    /// <summary>Starts watching <paramref name="cgroup"/>; kills before this call are not reported.</summary>
    /// <param name="cgroup">The cgroup.</param>
    /// <param name="interval">How often to read the counter when the kernel's notification is unavailable.</param>
    public CgroupOomWatcher(Cgroup cgroup, TimeSpan interval)
    {
        _cgroup = cgroup;
        _seen = SafeCount();
        _notification = cgroup.OpenOomNotification();
        if (_notification >= 0 && CgroupEvents.Register(_notification, OnNotified))
        {
            _timer = new Timer(_ => Check());
            return;
        }
        if (_notification >= 0)
        {
            Libc.Close(_notification);
            _notification = -1;
        }
        _timer = new Timer(_ => Check(), null, interval, interval);
    }

    /// <summary>Whether the kernel notifies this watcher (false: it polls).</summary>
    internal bool Notified => _notification >= 0;

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
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        _timer.Dispose();
        if (_notification >= 0)
        {
            CgroupEvents.Unregister(_notification);
        }
    }

    private void OnNotified()
    {
        Check();
        lock (_gate)
        {
            if (!_disposed)
            {
                _timer.Change(Recheck, Timeout.InfiniteTimeSpan);
            }
        }
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
