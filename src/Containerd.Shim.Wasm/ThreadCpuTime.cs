using System.Globalization;
using System.Runtime.InteropServices;

namespace Containerd.Shim.Wasm;

/// <summary>CPU time of guest threads, which an in-process host charges to a container's <see cref="CpuQuota"/> and
/// reports in Stats.</summary>
public static partial class ThreadCpuTime
{
    /// <summary>CPU time the calling thread has used, in nanoseconds; 0 when it cannot be read.</summary>
    public static long Nanos()
    {
        const int ClockThreadCpuTimeId = 3;
        return ClockGetTime(ClockThreadCpuTimeId, out var t) == 0 ? t.Seconds * 1_000_000_000 + t.Nanoseconds : 0;
    }

    /// <summary>CPU time thread <paramref name="tid"/> of this process has used, in nanoseconds, read from any
    /// thread (the first figure of its schedstat); 0 when it cannot be read.</summary>
    public static long Nanos(int tid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/self/task/{tid}/schedstat");
            var end = text.IndexOf(' ');
            return long.TryParse(end < 0 ? text : text[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var ns) ? ns : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
