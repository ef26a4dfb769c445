using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The cgroup of one wasm container, seen from the shim: made from the spec before the instance process is spawned,
/// joined by that process before it reports ready (so before any guest code runs), watched for OOM kills, updated,
/// measured and removed at Delete.
/// </summary>
internal sealed class InstanceCgroup : IDisposable
{
    private static readonly TimeSpan OomPollInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan RemoveTimeout = TimeSpan.FromSeconds(10);

    private readonly string _id;
    private CgroupOomWatcher? _watcher;

    private InstanceCgroup(string id, Cgroup cgroup)
    {
        _id = id;
        Cgroup = cgroup;
    }

    public Cgroup Cgroup { get; }

    /// <summary>
    /// Creates the container's cgroup with its resources applied, or returns null for a spec without a
    /// <c>linux</c> section (a bundle made by hand, not by containerd). Throws <see cref="ShimException"/> for a
    /// cgroupsPath in the systemd driver's form or a limit the kernel refuses.
    /// </summary>
    public static InstanceCgroup? Create(InstanceConfig config)
    {
        var linux = config.Spec.Linux;
        if (linux is null)
        {
            return null;
        }
        var path = CgroupPath.Resolve(linux.CgroupsPath, config.Namespace, config.Id);
        try
        {
            return new InstanceCgroup(config.Id, Cgroup.Create(CgroupHierarchy.Host, path, WithRuncDevices(linux.Resources)));
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"container {config.Id}: cgroup {path}: {e.Message}", e);
        }
    }

    /// <summary>Starts watching for OOM kills (the instance process joins the cgroup itself).</summary>
    public void Watch(Action onOom)
    {
        _watcher = new CgroupOomWatcher(Cgroup, OomPollInterval);
        _watcher.OomKilled += onOom;
    }

    /// <summary>Reports an OOM kill not yet seen (called when the process exited, before its exit is published).</summary>
    public void CheckOom() => _watcher?.Check();

    public Any Stats() => Cgroup.Stats();

    public void Update(Any resources) => Cgroup.Apply(WithRuncDevices(CgroupResources.Unpack(resources, _id))!);

    // What runc lets every container use after the spec's own device rules (its specconv's allowed devices): mknod
    // of any node, and the pseudo-devices every program expects (null, zero, full, random, urandom, tty, ptmx, the
    // pseudo-terminals). CRI's specs carry only a deny-all rule and rely on these; without them the runtime of the
    // instance process cannot open /dev/urandom. Appended only to rules the spec gives, as runc appends them.
    private static readonly LinuxDeviceCgroup[] RuncDevices =
    [
        new() { Allow = true, Type = "c", Access = "m" },
        new() { Allow = true, Type = "b", Access = "m" },
        Char(1, 3), Char(1, 5), Char(1, 7), Char(1, 8), Char(1, 9), Char(5, 0), Char(5, 2), Char(136, null),
    ];

    private static LinuxDeviceCgroup Char(long major, long? minor) =>
        new() { Allow = true, Type = "c", Major = major, Minor = minor, Access = "rwm" };

    /// <summary>The resources with runc's always-allowed devices after the spec's device rules, when it has some; a
    /// copy, the spec is left as it is.</summary>
    internal static LinuxResources? WithRuncDevices(LinuxResources? resources) =>
        resources?.Devices is not { } devices ? resources : new LinuxResources
        {
            Memory = resources.Memory,
            Cpu = resources.Cpu,
            Pids = resources.Pids,
            Devices = [.. devices, .. RuncDevices],
        };

    /// <summary>Stops watching and removes the cgroup; failures are logged, never thrown (Delete must go on).</summary>
    public void Dispose()
    {
        _watcher?.Dispose();
        try
        {
            Cgroup.Delete(RemoveTimeout);
        }
        catch (ShimException e)
        {
            ShimLog.Error($"container {_id}: removing its cgroup", e);
        }
    }

    /// <summary>The error for Stats/Update of a container that has no cgroup.</summary>
    public static ShimException None(string id, string operation) =>
        new(StatusCode.FailedPrecondition, $"{operation} of container {id}: it has no cgroup (its spec has no linux section)");
}
