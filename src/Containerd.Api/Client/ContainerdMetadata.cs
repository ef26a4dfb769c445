namespace Containerd.Api.Client;

/// <summary>
/// The gRPC metadata keys containerd reads from every request.
/// </summary>
public static class ContainerdMetadata
{
    /// <summary>
    /// Selects the containerd namespace a request operates in. containerd rejects
    /// most requests that lack it with <c>FailedPrecondition</c>.
    /// </summary>
    public const string NamespaceHeader = "containerd-namespace";

    /// <summary>
    /// Attaches the resources a request creates (content, snapshots, ingests) to a lease,
    /// so garbage collection keeps them until the lease is deleted.
    /// </summary>
    public const string LeaseHeader = "containerd-lease";

    /// <summary>The namespace containerd's own tools use when none is given.</summary>
    public const string DefaultNamespace = "default";
}
