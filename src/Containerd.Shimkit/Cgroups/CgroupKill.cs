using System.Globalization;
using Containerd.Shimkit.Processes;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// Kills every process of a container's cgroup, its child cgroups included, and waits until it is empty: what
/// <c>delete</c> does after a shim died, when a pid in a file may name any process by now. The cgroup is the
/// identity: v2's <c>cgroup.kill</c> where the kernel has it, and for each listed process a pidfd, a second look that
/// it is still listed, and the signal through the pidfd (so a pid reused in between is never hit).
/// </summary>
internal static class CgroupKill
{
    // A container does not nest cgroups this much; the walk has a bound like every other read of tenant state.
    private const int MaxDirectories = 1024;

    /// <summary>
    /// Kills and waits; true when the cgroup is empty (or gone) at the end. False, with <paramref name="problem"/>,
    /// when processes were left at <paramref name="timeout"/>, or when the cgroup holds this process (the root, or an
    /// ancestor of containerd's own cgroup: then nothing is killed through it at all).
    /// </summary>
    public static bool KillAll(Cgroup cgroup, TimeSpan timeout, out string? problem)
    {
        problem = null;
        var deadline = DateTime.UtcNow + timeout;
        var self = Environment.ProcessId;
        var first = true;
        while (true)
        {
            var directories = Walk(cgroup.Directories);
            var members = directories.Select(d => (Dir: d, Pids: Processes(d))).Where(m => m.Pids.Count > 0).ToList();
            if (members.Count == 0)
            {
                return true;
            }
            if (first && members.Any(m => m.Pids.Contains(self)))
            {
                problem = $"cgroup {cgroup.Path} holds this process too: it is not a container's own, nothing killed through it";
                return false;
            }
            first = false;
            if (DateTime.UtcNow > deadline)
            {
                problem = $"cgroup {cgroup.Path} still has processes after {timeout.TotalSeconds:0} s: " +
                    string.Join(' ', members.SelectMany(m => m.Pids).Take(16));
                return false;
            }
            foreach (var dir in cgroup.Directories)
            {
                // v2 (Linux 5.14+): the kernel kills the whole subtree, new forks included.
                TryWrite(Path.Combine(dir, "cgroup.kill"), "1");
            }
            foreach (var (dir, pids) in members)
            {
                foreach (var pid in pids)
                {
                    KillIfMember(dir, pid);
                }
            }
            Thread.Sleep(20);
        }
    }

    private static void KillIfMember(string dir, int pid)
    {
        using var process = ProcessHandle.Open(pid);
        // Listed again after the pidfd exists: if the process it holds is still alive when the signal lands, the
        // listing was about that process, not a newcomer with its number.
        if (process is not null && Processes(dir).Contains(pid))
        {
            process.Signal(Libc.SIGKILL);
        }
    }

    // The cgroup's directories and every directory below them, breadth first, at most MaxDirectories.
    private static List<string> Walk(IReadOnlyList<string> roots)
    {
        var result = new List<string>();
        var queue = new Queue<string>(roots);
        while (queue.Count > 0 && result.Count < MaxDirectories)
        {
            var dir = queue.Dequeue();
            if (!Directory.Exists(dir))
            {
                continue;
            }
            result.Add(dir);
            try
            {
                foreach (var child in Directory.EnumerateDirectories(dir))
                {
                    queue.Enqueue(child);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Removed meanwhile.
            }
        }
        return result;
    }

    private static HashSet<int> Processes(string dir)
    {
        var pids = new HashSet<int>();
        try
        {
            foreach (var line in BoundedRead.Text(Path.Combine(dir, "cgroup.procs"), 1 << 20).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                {
                    pids.Add(pid);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Gone: empty.
        }
        return pids;
    }

    private static void TryWrite(string path, string value)
    {
        if (!File.Exists(path))
        {
            return;
        }
        try
        {
            File.WriteAllText(path, value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Debug($"writing {path}: {e.Message}");
        }
    }
}
