using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>Which cgroup interface the host offers to containers.</summary>
public enum CgroupVersion
{
    /// <summary>Legacy hierarchies, one mount per controller (also the hybrid layout).</summary>
    V1 = 1,

    /// <summary>The unified hierarchy.</summary>
    V2 = 2,
}

/// <summary>
/// Where the host's cgroup hierarchies are mounted. A host whose <c>/sys/fs/cgroup</c> is cgroup2 is v2. A hybrid
/// host (v1 controllers plus a unified hierarchy, usually at <c>/sys/fs/cgroup/unified</c>, that holds no resource
/// controller) is treated as v1: the controllers that limit a container live in the v1 mounts.
/// </summary>
public sealed class CgroupHierarchy
{
    /// <summary>The v1 controllers a container is placed in, when the host mounts them.</summary>
    public static readonly IReadOnlyList<string> V1Controllers =
        ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer"];

    private CgroupHierarchy(CgroupVersion version, string? unifiedRoot, IReadOnlyDictionary<string, string> controllers)
    {
        Version = version;
        UnifiedRoot = unifiedRoot;
        Controllers = controllers;
    }

    /// <summary>The interface containers get.</summary>
    public CgroupVersion Version { get; }

    /// <summary>v2: the mount point of the unified hierarchy; null on v1.</summary>
    public string? UnifiedRoot { get; }

    /// <summary>v1: controller name → mount point of its hierarchy (co-mounted controllers share one); empty on v2.</summary>
    public IReadOnlyDictionary<string, string> Controllers { get; }

    /// <summary>A v2 hierarchy rooted at <paramref name="root"/> (the host's, or a fixture directory in tests).</summary>
    public static CgroupHierarchy V2(string root) => new(CgroupVersion.V2, root, new Dictionary<string, string>());

    /// <summary>v1 hierarchies: controller name → mount point.</summary>
    public static CgroupHierarchy V1(IReadOnlyDictionary<string, string> controllers) =>
        new(CgroupVersion.V1, null, controllers);

    private static readonly Lazy<CgroupHierarchy> HostHierarchy = new(() => Detect(File.ReadAllLines("/proc/self/mountinfo")));

    /// <summary>The host's hierarchy, read once from <c>/proc/self/mountinfo</c>.</summary>
    public static CgroupHierarchy Host => HostHierarchy.Value;

    /// <summary>Works out the layout from the lines of a <c>mountinfo</c> file.</summary>
    /// <exception cref="ShimException">FailedPrecondition when no cgroup filesystem is mounted.</exception>
    public static CgroupHierarchy Detect(IEnumerable<string> mountinfo)
    {
        string? unified = null;
        var controllers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in mountinfo)
        {
            // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>"
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0)
            {
                continue;
            }
            var left = line[..dash].Split(' ');
            var right = line[(dash + 3)..].Split(' ');
            if (left.Length < 5 || right.Length < 3)
            {
                continue;
            }
            var mountPoint = Unescape(left[4]);
            switch (right[0])
            {
                case "cgroup2":
                    // The first unified mount wins; /sys/fs/cgroup itself takes precedence.
                    if (unified is null || mountPoint == "/sys/fs/cgroup")
                    {
                        unified = mountPoint;
                    }
                    break;
                case "cgroup":
                    foreach (var option in right[2].Split(','))
                    {
                        if (V1Controllers.Contains(option))
                        {
                            controllers.TryAdd(option, mountPoint);
                        }
                    }
                    break;
            }
        }
        if (controllers.Count > 0 && unified != "/sys/fs/cgroup")
        {
            return V1(controllers);
        }
        if (unified is not null)
        {
            return V2(unified);
        }
        throw new ShimException(StatusCode.FailedPrecondition, "no cgroup filesystem is mounted on this host (see /proc/self/mountinfo)");
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string s) => s.Contains('\\', StringComparison.Ordinal)
        ? s.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal)
        : s;
}
