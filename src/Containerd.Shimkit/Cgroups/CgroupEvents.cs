namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// One thread per process that waits, in a single epoll set, on every cgroup notification descriptor the process
/// registered (an OOM eventfd on v1, an inotify watch of <c>memory.events</c> on v2) and runs the owner's callback
/// when one fires. An idle container then costs no wake-ups at all, where a poll per container woke the shim twice
/// a second each.
/// </summary>
internal static unsafe class CgroupEvents
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<int, Action> Handlers = [];
    private static int _epoll = -1;

    /// <summary>Watches <paramref name="fd"/> (non-blocking, owned from now on) and calls <paramref name="onReady"/>,
    /// on the watcher thread, each time it becomes readable. Returns false, closing nothing, when epoll is unavailable.</summary>
    public static bool Register(int fd, Action onReady)
    {
        lock (Gate)
        {
            if (_epoll < 0)
            {
                var epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
                if (epoll < 0)
                {
                    return false;
                }
                _epoll = epoll;
                new Thread(Loop) { IsBackground = true, Name = "cgroup-events" }.Start();
            }
            var ev = stackalloc byte[Libc.EpollEventSize];
            *(uint*)ev = Libc.EPOLLIN;
            *(long*)(ev + Libc.EpollDataOffset) = fd;
            if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, fd, ev) != 0)
            {
                return false;
            }
            Handlers[fd] = onReady;
            return true;
        }
    }

    /// <summary>Stops watching <paramref name="fd"/> and closes it.</summary>
    public static void Unregister(int fd)
    {
        lock (Gate)
        {
            if (Handlers.Remove(fd))
            {
                Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, fd, null);
            }
            // Closed under the lock: a new registration cannot reuse the number while it is still in the set.
            Libc.Close(fd);
        }
    }

    private static void Loop()
    {
        const int max = 16;
        var events = stackalloc byte[Libc.EpollEventSize * max];
        var drain = stackalloc byte[1024];
        while (true)
        {
            var n = Libc.EpollWait(_epoll, events, max, -1);
            for (var i = 0; i < n; i++)
            {
                var fd = (int)*(long*)(events + (i * Libc.EpollEventSize) + Libc.EpollDataOffset);
                Action? handler;
                lock (Gate)
                {
                    if (!Handlers.TryGetValue(fd, out handler))
                    {
                        continue;
                    }
                    // Empty the counter or the event queue, or epoll reports the descriptor again at once.
                    while (Libc.Read(fd, drain, 1024) > 0)
                    {
                    }
                }
                try
                {
                    handler();
                }
                catch (Exception e)
                {
                    ShimLog.Warn($"cgroup event handler failed: {e.Message}");
                }
            }
        }
    }
}
