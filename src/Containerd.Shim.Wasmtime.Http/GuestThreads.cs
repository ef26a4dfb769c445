using System.Collections.Concurrent;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Threads with big stacks that run guests, kept between requests. A fresh thread per request cost its stack's
/// mmap/munmap (TLB shootdowns across the process's threads) and Wasmtime's per-thread set-up (signal stack) every
/// time. A request never waits for a busy thread: when none is idle, a new one starts (guests block on I/O, so a
/// fixed pool could starve). Threads idle for <see cref="IdleTimeout"/> exit.
/// </summary>
internal sealed class GuestThreads(int stackSize, string name)
{
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    private readonly BlockingCollection<Action> _work = new(new ConcurrentQueue<Action>());

    // Idle threads not yet promised an item. Every item queued was promised one of them, so a queued item always
    // has a thread on its way to take it.
    private int _idle;

    public void Run(Action work)
    {
        while (true)
        {
            var idle = Volatile.Read(ref _idle);
            if (idle == 0)
            {
                break;
            }
            if (Interlocked.CompareExchange(ref _idle, idle - 1, idle) == idle)
            {
                _work.Add(work);
                return;
            }
        }
        new Thread(() => Loop(work), stackSize) { IsBackground = true, Name = name }.Start();
    }

    private void Loop(Action first)
    {
        var work = first;
        while (true)
        {
            work();
            Interlocked.Increment(ref _idle);
            if (!_work.TryTake(out work!, IdleTimeout))
            {
                // Leave, unless a request was promised this thread meanwhile: then wait for it.
                if (Withdraw())
                {
                    return;
                }
                work = _work.Take();
            }
        }
    }

    private bool Withdraw()
    {
        while (true)
        {
            var idle = Volatile.Read(ref _idle);
            if (idle == 0)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _idle, idle - 1, idle) == idle)
            {
                return true;
            }
        }
    }
}
