using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>Turns the spec's <c>linux.cgroupsPath</c> into a path inside the cgroup hierarchies.</summary>
public static class CgroupPath
{
    /// <summary>
    /// The cgroup of a container in cgroupfs form: an absolute path below each hierarchy's root (e.g.
    /// <c>/default/web</c>), or a relative one that <see cref="Cgroup"/> takes below the shim's own cgroup, as runc's
    /// cgroupfs driver does. Empty means containerd's own default, <c>/&lt;namespace&gt;/&lt;id&gt;</c>.
    /// </summary>
    /// <exception cref="ShimException">Unimplemented for the systemd driver's <c>slice:prefix:name</c> form;
    /// InvalidArgument for a path that climbs out with <c>..</c>.</exception>
    public static string Resolve(string? cgroupsPath, string ns, string id)
    {
        if (string.IsNullOrEmpty(cgroupsPath))
        {
            return $"/{ns}/{id}";
        }
        if (IsSystemdForm(cgroupsPath))
        {
            throw new ShimException(StatusCode.Unimplemented,
                $"container {id}: linux.cgroupsPath \"{cgroupsPath}\" is in the systemd cgroup driver's slice:prefix:name form; " +
                "the systemd cgroup driver is not supported yet: set SystemdCgroup = false in containerd's runtime options " +
                "(and kubelet's cgroupDriver to cgroupfs)");
        }
        var parts = cgroupsPath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Any(p => p is "." or ".."))
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"container {id}: linux.cgroupsPath \"{cgroupsPath}\" must not contain . or .. components");
        }
        var joined = string.Join('/', parts);
        return cgroupsPath.StartsWith('/') ? "/" + joined : joined;
    }

    /// <summary>Whether <paramref name="cgroupsPath"/> is the systemd driver's <c>slice:prefix:name</c> triple.</summary>
    public static bool IsSystemdForm(string cgroupsPath) =>
        !cgroupsPath.StartsWith('/') && cgroupsPath.Count(c => c == ':') == 2;

    /// <summary>Joins a resolved path to the shim's own cgroup when it is relative.</summary>
    public static string Absolute(string path, string? controller) =>
        path.StartsWith('/') ? path : Own(controller).TrimEnd('/') + "/" + path;

    /// <summary>This process's cgroup in <paramref name="controller"/>'s hierarchy (v1) or the unified one (null),
    /// read from <c>/proc/self/cgroup</c>; "/" when the file does not name it.</summary>
    public static string Own(string? controller)
    {
        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            // "<hierarchy id>:<controllers>:<path>"
            var first = line.IndexOf(':');
            var second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0)
            {
                continue;
            }
            var list = line[(first + 1)..second];
            var path = line[(second + 1)..];
            if (controller is null ? list.Length == 0 : list.Split(',').Contains(controller))
            {
                return path;
            }
        }
        return "/";
    }
}
