using System.Runtime.InteropServices;

namespace Containerd.Testing;

/// <summary>
/// Finds what on the host belongs to one private containerd, by looking in /proc: processes whose command line,
/// executable, working folder or root lies in its folder or whose cgroup is in its namespace, and mounts below its folder.
/// </summary>
public static class HostScanner
{
    /// <summary>Processes (other than this one) that reference <paramref name="workDir"/> or live in the cgroup of <paramref name="ns"/>.</summary>
    /// <param name="workDir">The fixture's folder.</param>
    /// <param name="ns">The fixture's containerd namespace, which ctr also uses as the container cgroup parent.</param>
    /// <returns>Pid and a description of each process.</returns>
    public static IReadOnlyList<(int Pid, string Description)> FindProcesses(string workDir, string? ns)
    {
        var self = Environment.ProcessId;
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == self)
            {
                continue;
            }
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();
                if (cmdline.Length == 0)
                {
                    // Kernel threads and zombies: nothing to kill.
                    continue;
                }
                var hit = cmdline.Contains(workDir, StringComparison.Ordinal)
                    || LinkUnder(Path.Combine(dir, "exe"), workDir)
                    || LinkUnder(Path.Combine(dir, "cwd"), workDir)
                    || LinkUnder(Path.Combine(dir, "root"), workDir)
                    || (ns is not null && InNamespaceCgroup(Path.Combine(dir, "cgroup"), ns));
                if (hit)
                {
                    found.Add((pid, $"{pid} {cmdline}"));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process exited while we looked at it.
            }
        }
        return found;
    }

    /// <summary>Processes (other than this one) whose command line contains <paramref name="text"/>, except the
    /// ones that also contain <paramref name="except"/>.</summary>
    /// <param name="text">What to look for, such as a container id or <c>-namespace ns </c>.</param>
    /// <param name="except">Command lines to ignore (ctr's event watchers name the id too), or null.</param>
    /// <returns>"pid: command line" of each process.</returns>
    public static IReadOnlyList<string> ProcessesMentioning(string text, string? except = null)
    {
        var self = Environment.ProcessId;
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == self)
            {
                continue;
            }
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal) && (except is null || !cmdline.Contains(except, StringComparison.Ordinal)))
                {
                    found.Add($"{pid}: {cmdline}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process exited while we looked at it.
            }
        }
        return found;
    }

    /// <summary>Mount points at or below <paramref name="workDir"/>, deepest first (the order to unmount them in).</summary>
    /// <param name="workDir">The fixture's folder.</param>
    /// <returns>The mount points.</returns>
    public static IReadOnlyList<string> FindMounts(string workDir)
    {
        var prefix = workDir.TrimEnd('/') + "/";
        var mounts = new List<string>();
        foreach (var line in File.ReadAllLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 5)
            {
                continue;
            }
            var point = Unescape(fields[4]);
            if (point == workDir.TrimEnd('/') || point.StartsWith(prefix, StringComparison.Ordinal))
            {
                mounts.Add(point);
            }
        }
        return mounts.Distinct().OrderByDescending(m => m.Length).ToList();
    }

    /// <summary>Detaches every mount below <paramref name="workDir"/>; lazily, so a busy mount cannot block teardown.</summary>
    /// <param name="workDir">The fixture's folder.</param>
    /// <returns>Mount points that could not be detached, with the reason.</returns>
    public static IReadOnlyList<string> UnmountAll(string workDir)
    {
        var failed = new List<string>();
        // Stacked mounts on one point need one umount each, so go round until nothing changes.
        for (var round = 0; round < 5; round++)
        {
            var mounts = FindMounts(workDir);
            if (mounts.Count == 0)
            {
                return [];
            }
            failed.Clear();
            foreach (var m in mounts)
            {
                if (Native.umount2(m, 0) != 0 && Native.umount2(m, Native.MNT_DETACH) != 0)
                {
                    failed.Add($"{m}: errno {Marshal.GetLastPInvokeError()}");
                }
            }
        }
        return failed;
    }

    /// <summary>True for a path where network namespaces are pinned (/run/netns or /var/run/netns).</summary>
    /// <param name="path">A namespace path from an OCI spec.</param>
    /// <returns>Whether teardown may unmount and delete it.</returns>
    public static bool IsNetworkNamespaceMount(string path) =>
        (path.StartsWith("/run/netns/", StringComparison.Ordinal) || path.StartsWith("/var/run/netns/", StringComparison.Ordinal))
        && !path.Contains("..", StringComparison.Ordinal);

    /// <summary>Unpins a network namespace (unmounts its bind mount) and deletes the file, as <c>ip netns delete</c> does.</summary>
    /// <param name="path">The pinned namespace, under /run/netns.</param>
    public static void RemoveNetworkNamespace(string path)
    {
        if (!IsNetworkNamespaceMount(path) || !File.Exists(path))
        {
            return;
        }
        _ = Native.umount2(path, Native.MNT_DETACH);
        File.Delete(path);
    }

    private static bool LinkUnder(string link, string workDir)
    {
        var target = new FileInfo(link).LinkTarget;
        return target is not null && (target == workDir || target.StartsWith(workDir.TrimEnd('/') + "/", StringComparison.Ordinal));
    }

    private static bool InNamespaceCgroup(string cgroupFile, string ns)
    {
        // ctr gives every container the cgroup /<namespace>/<id>; the fixture's namespace is unique.
        foreach (var line in File.ReadAllLines(cgroupFile))
        {
            var path = line[(line.LastIndexOf(':') + 1)..];
            if (path.StartsWith("/" + ns + "/", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private static string Unescape(string s) =>
        s.Replace("\\040", " ", StringComparison.Ordinal)
            .Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal)
            .Replace("\\134", "\\", StringComparison.Ordinal);

    private static class Native
    {
        public const int MNT_DETACH = 2;

        [DllImport("libc", SetLastError = true)]
        public static extern int umount2(string target, int flags);
    }
}
