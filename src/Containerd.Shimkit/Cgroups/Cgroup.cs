using System.Globalization;
using Containerd.Shimkit.Oci;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// One container's cgroup, on v1 (a directory per controller hierarchy) or v2 (one directory in the unified
/// hierarchy): created from the spec, holds the container's processes, applies <c>linux.resources</c>, reports
/// metrics in containerd's own types and counts OOM kills. Engine-agnostic: any instance whose processes should
/// be limited uses it.
/// </summary>
public abstract class Cgroup
{
    private protected Cgroup(string path)
    {
        Path = path;
    }

    /// <summary>The cgroup's path inside the hierarchy (e.g. <c>/default/web</c>).</summary>
    public string Path { get; }

    /// <summary>v1 or v2.</summary>
    public abstract CgroupVersion Version { get; }

    /// <summary>The directories that make up the cgroup (one per v1 hierarchy, one on v2).</summary>
    public abstract IReadOnlyList<string> Directories { get; }

    /// <summary>The type URL containerd decodes <see cref="Stats"/> by: <c>io.containerd.cgroups.v1.Metrics</c> or
    /// <c>io.containerd.cgroups.v2.Metrics</c> (the message's full name, as containerd's typeurl registers it).</summary>
    public abstract string MetricsTypeUrl { get; }

    /// <summary>
    /// Creates (or reuses) the cgroup at <paramref name="path"/> (see <see cref="CgroupPath.Resolve"/>) and applies
    /// <paramref name="resources"/>. When anything fails, the directories this call created are removed again.
    /// </summary>
    /// <exception cref="ShimException">Naming the file or directory and the reason.</exception>
    public static Cgroup Create(CgroupHierarchy hierarchy, string path, LinuxResources? resources)
    {
        var cgroup = Open(hierarchy, path);
        var created = cgroup.MakeDirectories();
        try
        {
            if (resources is not null)
            {
                cgroup.Apply(resources);
            }
            return cgroup;
        }
        catch
        {
            foreach (var dir in Enumerable.Reverse(created))
            {
                TryRemoveDirectory(dir);
            }
            throw;
        }
    }

    /// <summary>The cgroup at <paramref name="path"/> as it is, without creating or changing anything (to measure or
    /// remove a cgroup another process made).</summary>
    public static Cgroup Open(CgroupHierarchy hierarchy, string path) => hierarchy.Version == CgroupVersion.V2
        ? new CgroupV2(hierarchy.UnifiedRoot!, CgroupPath.Absolute(path, null))
        : new CgroupV1(hierarchy.Controllers, path);

    /// <summary>Moves process <paramref name="pid"/> (all its threads) into the cgroup.</summary>
    public void AddProcess(int pid)
    {
        foreach (var dir in Directories)
        {
            Write(dir, "cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The processes in the cgroup (of its first directory).</summary>
    public IReadOnlyList<int> Processes()
    {
        var text = ReadText(System.IO.Path.Combine(Directories[0], "cgroup.procs"));
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
    }

    /// <summary>Applies the limits that are set in <paramref name="resources"/>; unset ones stay as they are.</summary>
    /// <exception cref="ShimException">InvalidArgument when the kernel refuses a value, naming the file and value.</exception>
    public abstract void Apply(LinuxResources resources);

    /// <summary>Reads the cgroup's figures as containerd's metrics message (v1 or v2).</summary>
    public abstract IMessage ReadMetrics();

    /// <summary>The metrics packed as containerd's Task.Stats returns them.</summary>
    public Any Stats() => new() { TypeUrl = MetricsTypeUrl, Value = ReadMetrics().ToByteString() };

    /// <summary>
    /// Opens the cgroup's <c>memory.stat</c> and its usage file read-only, for <see cref="MemoryCharge.Read"/> in a
    /// process that will not be able to open them itself (the descriptors are close-on-exec: a spawn maps them where
    /// the child expects them). Null when the cgroup has no memory controller.
    /// </summary>
    /// <exception cref="ShimException">Internal naming the file, when it exists and cannot be opened.</exception>
    public (SafeFileHandle Stat, SafeFileHandle Usage)? OpenMemoryFiles()
    {
        if (MemoryDirectory is not { } dir || !File.Exists(System.IO.Path.Combine(dir, "memory.stat")))
        {
            return null;
        }
        var stat = OpenRead(System.IO.Path.Combine(dir, "memory.stat"));
        try
        {
            return (stat, OpenRead(System.IO.Path.Combine(dir, MemoryUsageFile)));
        }
        catch
        {
            stat.Dispose();
            throw;
        }
    }

    /// <summary>The directory with the cgroup's memory files, or null when it has no memory controller.</summary>
    private protected abstract string? MemoryDirectory { get; }

    /// <summary>The file that holds the whole charge: <c>memory.usage_in_bytes</c> (v1) or <c>memory.current</c> (v2).</summary>
    private protected abstract string MemoryUsageFile { get; }

    private static SafeFileHandle OpenRead(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.Internal, $"opening {path}: {e.Message}", e);
        }
    }

    /// <summary>How many times the kernel's OOM killer killed a process of this cgroup.</summary>
    public abstract ulong OomKillCount();

    /// <summary>A non-blocking descriptor that becomes readable when the OOM state of this cgroup changes, or -1
    /// when the kernel offers no such notification for it (then the owner polls).</summary>
    internal abstract int OpenOomNotification();

    /// <summary>
    /// Removes the cgroup's directories, retrying while the kernel still reports it busy (a killed process leaves
    /// the cgroup shortly after it was reaped). Missing directories count as removed.
    /// </summary>
    /// <exception cref="ShimException">FailedPrecondition when a directory is still busy after
    /// <paramref name="timeout"/>, naming it and the processes left in it.</exception>
    public void Delete(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var dir in Directories)
        {
            while (true)
            {
                try
                {
                    Directory.Delete(dir);
                    break;
                }
                catch (DirectoryNotFoundException)
                {
                    break;
                }
                catch (IOException e) when (DateTime.UtcNow < deadline)
                {
                    _ = e;
                    Thread.Sleep(20);
                }
                catch (IOException e)
                {
                    var left = File.Exists(System.IO.Path.Combine(dir, "cgroup.procs"))
                        ? ReadText(System.IO.Path.Combine(dir, "cgroup.procs")).Replace('\n', ' ').Trim()
                        : "";
                    throw new ShimException(StatusCode.FailedPrecondition,
                        $"removing cgroup {dir}: {e.Message}{(left.Length > 0 ? $" (processes still in it: {left})" : "")}", e);
                }
            }
        }
    }

    /// <summary>Creates the missing directories top-down; returns the ones it created, parents first.</summary>
    private protected abstract List<string> MakeDirectories();

    /// <summary>Creates <paramref name="dir"/> and its missing parents below <paramref name="root"/>, calling
    /// <paramref name="prepare"/> (parent, child) for every level below the root, parent first, whether this call made it
    /// or found it: a level another shim is creating at the same moment may not be prepared yet.</summary>
    private protected static void MakeBelow(string root, string dir, List<string> created, Action<string, string>? prepare = null)
    {
        var relative = System.IO.Path.GetRelativePath(root, dir);
        var current = root;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }
            var parent = current;
            current = System.IO.Path.Combine(current, part);
            if (!Directory.Exists(current))
            {
                try
                {
                    Directory.CreateDirectory(current);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ShimException(StatusCode.FailedPrecondition, $"creating cgroup {current}: {e.Message}", e);
                }
                created.Add(current);
            }
            prepare?.Invoke(parent, current);
        }
    }

    /// <summary>Undoes a failed creation: removes the directories made so far, deepest first, as far as possible.</summary>
    private protected static void RemoveCreated(List<string> created)
    {
        foreach (var dir in Enumerable.Reverse(created))
        {
            try
            {
                Directory.Delete(dir);
            }
            catch (IOException)
            {
            }
        }
    }

    private protected static void Write(string dir, string file, string value)
    {
        var path = System.IO.Path.Combine(dir, file);
        try
        {
            // cgroupfs ignores the truncation File.WriteAllText asks for; a fixture's regular file needs it.
            File.WriteAllText(path, value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"writing \"{value}\" to {path}: {e.Message}", e);
        }
    }

    private protected static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.Internal, $"reading {path}: {e.Message}", e);
        }
    }

    /// <summary>A single-number file; "max" reads as <paramref name="max"/>; a missing file reads as 0 (the
    /// kernel lacks that feature).</summary>
    private protected static ulong ReadNumber(string dir, string file, ulong max = ulong.MaxValue)
    {
        var path = System.IO.Path.Combine(dir, file);
        if (!File.Exists(path))
        {
            return 0;
        }
        var text = ReadText(path).Trim();
        if (text == "max")
        {
            return max;
        }
        // v1 reports "unlimited" as a huge signed value; a negative one (-1) means the same.
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value
            : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var signed) && signed < 0 ? max
            : 0;
    }

    /// <summary>A flat keyed file (<c>key value</c> per line); a missing file reads as empty.</summary>
    private protected static Dictionary<string, ulong> ReadKeyed(string dir, string file)
    {
        var path = System.IO.Path.Combine(dir, file);
        var values = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return values;
        }
        foreach (var line in ReadText(path).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var space = line.IndexOf(' ');
            if (space > 0 && ulong.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                values[line[..space]] = value;
            }
        }
        return values;
    }

    private protected static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private protected static string Number(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    private static void TryRemoveDirectory(string dir)
    {
        try
        {
            Directory.Delete(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"removing cgroup {dir} after a failed create: {e.Message}");
        }
    }
}
