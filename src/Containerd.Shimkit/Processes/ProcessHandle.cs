using System.Globalization;
using System.Runtime.InteropServices;

namespace Containerd.Shimkit.Processes;

/// <summary>
/// A process held by a pidfd: signals reach the process that was opened, never one that got its number later. Used
/// where the shim knows a pid only from a file (a dead shim's <c>init.pid</c>) and must not kill a stranger.
/// </summary>
internal sealed class ProcessHandle : IDisposable
{
    private int _fd;

    private ProcessHandle(int pid, int fd)
    {
        Pid = pid;
        _fd = fd;
    }

    public int Pid { get; }

    /// <summary>Opens <paramref name="pid"/>; null when there is no such process (or the kernel has no pidfds).</summary>
    public static ProcessHandle? Open(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }
        var fd = Libc.PidfdOpen(pid);
        return fd < 0 ? null : new ProcessHandle(pid, fd);
    }

    /// <summary>
    /// Field 22 of <c>/proc/&lt;pid&gt;/stat</c>: when the process started, in clock ticks since boot. With the pid it
    /// names one process for the machine's uptime; null when there is no such process.
    /// </summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = BoundedRead.Text($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat", 4096);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count from the last ')'. Field 3 (state)
        // is the first after it, so field 22 is the 20th.
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 20 && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : null;
    }

    /// <summary>The cgroup paths <c>/proc/&lt;pid&gt;/cgroup</c> lists (one per hierarchy), empty when it is gone.
    /// Meaningful about this process only while it is alive: check with a signal through the handle afterwards.</summary>
    public IReadOnlyList<string> CgroupPaths()
    {
        try
        {
            return [.. BoundedRead.Text($"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}/cgroup", 64 << 10)
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(':', 3))
                .Where(p => p.Length == 3)
                .Select(p => p[2])];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Sends <paramref name="signal"/>; false when the process has exited.</summary>
    public bool Signal(int signal) => Libc.PidfdSendSignal(_fd, signal) == 0;

    /// <summary>Waits until the process has exited (a zombie counts); false when <paramref name="timeout"/> passed first.</summary>
    public unsafe bool WaitExited(TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            var poll = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
            var left = Math.Max(0, deadline - Environment.TickCount64);
            var n = Libc.Poll(&poll, 1, (int)Math.Min(left, int.MaxValue));
            if (n > 0)
            {
                return true;
            }
            if (n == 0 || Marshal.GetLastPInvokeError() != Libc.EINTR)
            {
                return false;
            }
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Libc.Close(fd);
        }
    }
}
