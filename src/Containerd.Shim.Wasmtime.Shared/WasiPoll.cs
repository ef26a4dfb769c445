using System.Diagnostics;
using Wasmtime;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// Our own <c>wasi_snapshot_preview1.poll_oneoff</c>, shadowing Wasmtime's. Wasmtime's blocks the calling thread
/// until its timeout (a program's <c>sleep</c> is a poll on a clock), and epoch interruption only fires in wasm
/// code, so an instance asleep for an hour could not be killed. This one waits on the instance's stop descriptor as
/// well and traps the moment the instance is killed.
/// </summary>
/// <remarks>
/// Clock subscriptions are timers, relative or absolute (monotonic time counts from the instance's WASI context, as
/// Wasmtime's own clock does; realtime is the host's). A read subscription on fd 0 waits for the instance's stdin
/// pipe. Every other descriptor is reported ready at once: the preopened rootfs holds regular files and directories,
/// which are always ready, and stdout/stderr go to callbacks that never refuse a write.
/// </remarks>
internal static class WasiPoll
{
    private const int SubscriptionSize = 48;
    private const int EventSize = 32;
    private const byte EventClock = 0, EventFdRead = 1, EventFdWrite = 2;
    private const int ErrnoSuccess = 0, ErrnoFault = 21, ErrnoInval = 28, ErrnoNotsup = 58;

    /// <summary>The most subscriptions one call may pass. The daemon copies each into memory of its own, so without a
    /// bound a guest with a large linear memory could make every tenant's daemon allocate gigabytes (a count near
    /// 4 GiB / 48); Linux bounds poll(2) by RLIMIT_NOFILE, 1024 by default, and this is well above any real program's.</summary>
    internal const int MaxSubscriptions = 4096;

    public static int PollOneoff(Caller caller, int input, int output, int count, int eventCountPtr)
    {
        var instance = caller.GetData() as InProcessInstance
            ?? throw new InvalidOperationException("poll_oneoff outside of an in-process instance");
        // A guest that sleeps between bursts of work meets an updated memory limit here too.
        instance.ApplyPendingLimits();
        var memory = caller.GetMemory("memory");
        if (memory is null)
        {
            return ErrnoFault;
        }
        if (count is <= 0 or > MaxSubscriptions)
        {
            return ErrnoInval;
        }
        var length = memory.GetLength();
        if (input < 0 || output < 0 || (long)input + (long)count * SubscriptionSize > length
            || (long)output + (long)count * EventSize > length || eventCountPtr < 0 || eventCountPtr + 4L > length)
        {
            return ErrnoFault;
        }

        var subs = new Subscription[count];
        var nowMono = instance.MonotonicNow();
        long? earliest = null;
        var waitsOnStdin = false;
        for (var i = 0; i < count; i++)
        {
            var at = input + (long)i * SubscriptionSize;
            var sub = new Subscription { UserData = memory.ReadInt64(at), Tag = memory.ReadByte(at + 8) };
            switch (sub.Tag)
            {
                case EventClock:
                    var clock = memory.ReadInt32(at + 16);
                    var timeout = memory.ReadInt64(at + 24);
                    var absolute = (memory.ReadInt16(at + 40) & 1) != 0;
                    if (clock is < 0 or > 3)
                    {
                        return ErrnoInval;
                    }
                    long deadline;
                    if (!absolute)
                    {
                        deadline = SaturatingAdd(nowMono, timeout);
                    }
                    else if (clock == 0)
                    {
                        // Realtime: the distance from now on the host's wall clock, onto our monotonic scale.
                        var nowReal = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;
                        deadline = SaturatingAdd(nowMono, timeout - nowReal);
                    }
                    else
                    {
                        deadline = timeout;
                    }
                    sub.Deadline = deadline;
                    earliest = earliest is { } e ? Math.Min(e, deadline) : deadline;
                    break;
                case EventFdRead or EventFdWrite:
                    sub.Fd = memory.ReadInt32(at + 16);
                    waitsOnStdin |= sub.Tag == EventFdRead && sub.Fd == 0 && instance.StdinPollFd >= 0;
                    break;
                default:
                    return ErrnoInval;
            }
            subs[i] = sub;
        }

        while (true)
        {
            nowMono = instance.MonotonicNow();
            var stdinReady = waitsOnStdin && instance.StdinReady();
            var events = 0;
            for (var i = 0; i < count; i++)
            {
                var sub = subs[i];
                var fired = sub.Tag switch
                {
                    EventClock => nowMono >= sub.Deadline,
                    EventFdRead when sub.Fd == 0 && instance.StdinPollFd >= 0 => stdinReady,
                    _ => true,
                };
                if (!fired)
                {
                    continue;
                }
                var at = output + (long)events * EventSize;
                memory.WriteInt64(at, sub.UserData);
                memory.WriteInt16(at + 8, 0);
                memory.WriteByte(at + 10, sub.Tag);
                memory.WriteInt64(at + 16, 0);
                memory.WriteInt16(at + 24, 0);
                events++;
            }
            if (events > 0)
            {
                memory.WriteInt32(eventCountPtr, events);
                return ErrnoSuccess;
            }
            var waitMs = earliest is { } d ? (int)Math.Clamp((d - nowMono + 999_999) / 1_000_000, 0, int.MaxValue) : -1;
            if (!HostIo.WaitFor(waitsOnStdin ? instance.StdinPollFd : -1, HostIo.POLLIN, instance.StopFd, waitMs))
            {
                instance.ThrowIfKilled();
                return ErrnoNotsup;
            }
        }
    }

    private static long SaturatingAdd(long a, long b)
    {
        var sum = a + b;
        return b > 0 && sum < a ? long.MaxValue : sum;
    }

    private struct Subscription
    {
        public long UserData;
        public byte Tag;
        public long Deadline;
        public int Fd;
    }
}
