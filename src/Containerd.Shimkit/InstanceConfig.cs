using Containerd.Shimkit.Oci;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit;

/// <summary>Everything an <see cref="IInstanceFactory"/> needs to create one container.</summary>
public sealed class InstanceConfig
{
    /// <summary>The container (task) id.</summary>
    public required string Id { get; init; }

    /// <summary>The containerd namespace the container lives in.</summary>
    public required string Namespace { get; init; }

    /// <summary>Absolute path of the OCI bundle directory.</summary>
    public required string Bundle { get; init; }

    /// <summary>Absolute path of the root filesystem, <c>&lt;bundle&gt;/rootfs</c>, already mounted by the kit.</summary>
    public required string Rootfs { get; init; }

    /// <summary>The bundle's parsed <c>config.json</c>.</summary>
    public required Spec Spec { get; init; }

    /// <summary>The container's stdin, opened by the kit; null when the container has none.</summary>
    public SafeFileHandle? Stdin { get; init; }

    /// <summary>The container's stdout, opened by the kit; null when the container has none.</summary>
    public SafeFileHandle? Stdout { get; init; }

    /// <summary>The container's stderr, opened by the kit; null when the container has none.</summary>
    public SafeFileHandle? Stderr { get; init; }

    /// <summary>containerd's gRPC socket address (the <c>-address</c> flag).</summary>
    public required string ContainerdAddress { get; init; }

    /// <summary>containerd's ttrpc socket address (the <c>TTRPC_ADDRESS</c> environment variable).</summary>
    public required string TtrpcAddress { get; init; }
}
