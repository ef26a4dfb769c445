using Google.Protobuf.WellKnownTypes;

namespace Containerd.Shimkit;

/// <summary>
/// Optional capability of an <see cref="IInstance"/> whose process lives in a resource-controlled group (a cgroup).
/// The Task service's <c>Stats</c> and <c>Update</c> delegate to it and it reports kernel OOM kills, which the kit
/// publishes as <c>/tasks/oom</c>. Instances without it answer Stats and Update with <c>Unimplemented</c>.
/// </summary>
public interface IInstanceResources
{
    /// <summary>
    /// The instance's current metrics, packed the way containerd decodes them: an <see cref="Any"/> holding
    /// <c>io.containerd.cgroups.v1.Metrics</c> or <c>io.containerd.cgroups.v2.Metrics</c>.
    /// Throws <see cref="ShimException"/> when the figures cannot be read.
    /// </summary>
    Any Stats();

    /// <summary>
    /// Applies new limits to the running instance. <paramref name="resources"/> is the <c>UpdateTaskRequest</c>'s
    /// payload: the runtime spec's <c>LinuxResources</c> as JSON (type URL
    /// <c>types.containerd.io/opencontainers/runtime-spec/1/LinuxResources</c>). Bad input throws
    /// <see cref="ShimException"/> with <c>InvalidArgument</c>.
    /// </summary>
    void Update(Any resources, IReadOnlyDictionary<string, string> annotations);

    /// <summary>
    /// Raised, on any thread, each time the kernel OOM-kills a process of the instance. The kit subscribes once the
    /// instance is created and publishes containerd's <c>TaskOOM</c> event for each call.
    /// </summary>
    event Action? OomKilled;
}
