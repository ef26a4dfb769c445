using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
// Aliases: inside namespace Containerd, a bare "Events" or "Content" would bind to sibling namespaces.
using ContainersApi = Containerd.Services.Containers.V1.Containers;
using ContentApi = Containerd.Services.Content.V1.Content;
using EventsApi = Containerd.Services.Events.V1.Events;
using ImagesApi = Containerd.Services.Images.V1.Images;
using LeasesApi = Containerd.Services.Leases.V1.Leases;
using NamespacesApi = Containerd.Services.Namespaces.V1.Namespaces;
using SnapshotsApi = Containerd.Services.Snapshots.V1.Snapshots;
using TasksApi = Containerd.Services.Tasks.V1.Tasks;
using VersionApi = Containerd.Services.Version.V1.Version;

namespace Containerd.Api.Client;

/// <summary>
/// A connection to containerd's gRPC API over its Unix socket, with one typed
/// client per containerd service. Every call carries the client's namespace
/// (and lease, when set) as metadata.
/// </summary>
/// <remarks>
/// <see cref="WithNamespace"/> and <see cref="WithLease"/> return views that share
/// this client's connection; only the client created with a socket path owns it,
/// so dispose that one (views need no disposal).
/// </remarks>
public sealed class ContainerdClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly bool _ownsChannel;

    /// <summary>
    /// Connects (lazily, on the first call) to the containerd socket at <paramref name="socketPath"/>.
    /// </summary>
    /// <param name="socketPath">containerd's gRPC socket, e.g. <c>/run/containerd/containerd.sock</c>.</param>
    /// <param name="namespace">The namespace every call uses unless it sets its own header.</param>
    public ContainerdClient(string socketPath, string @namespace = ContainerdMetadata.DefaultNamespace)
        : this(UnixSocketChannel.Create(socketPath), ownsChannel: true, @namespace, lease: null)
    {
        SocketPath = socketPath;
    }

    private ContainerdClient(GrpcChannel channel, bool ownsChannel, string @namespace, string? lease)
    {
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        _channel = channel;
        _ownsChannel = ownsChannel;
        Namespace = @namespace;
        Lease = lease;
        CallInvoker = channel.Intercept(new ContainerdMetadataInterceptor(@namespace, lease));
        Containers = new ContainersApi.ContainersClient(CallInvoker);
        Tasks = new TasksApi.TasksClient(CallInvoker);
        Images = new ImagesApi.ImagesClient(CallInvoker);
        Content = new ContentApi.ContentClient(CallInvoker);
        Leases = new LeasesApi.LeasesClient(CallInvoker);
        Snapshots = new SnapshotsApi.SnapshotsClient(CallInvoker);
        Events = new EventsApi.EventsClient(CallInvoker);
        Namespaces = new NamespacesApi.NamespacesClient(CallInvoker);
        Version = new VersionApi.VersionClient(CallInvoker);
    }

    /// <summary>The socket this client's connection goes to, when known.</summary>
    public string? SocketPath { get; private init; }

    /// <summary>The containerd namespace applied to calls that do not set their own.</summary>
    public string Namespace { get; }

    /// <summary>The lease applied to calls that do not set their own, or <c>null</c>.</summary>
    public string? Lease { get; }

    /// <summary>
    /// The call invoker that adds this client's metadata; use it to build clients
    /// for containerd services this type does not expose.
    /// </summary>
    public CallInvoker CallInvoker { get; }

    /// <summary>Container metadata (containerd.services.containers.v1).</summary>
    public ContainersApi.ContainersClient Containers { get; }

    /// <summary>Running tasks and their processes (containerd.services.tasks.v1).</summary>
    public TasksApi.TasksClient Tasks { get; }

    /// <summary>Image records (containerd.services.images.v1).</summary>
    public ImagesApi.ImagesClient Images { get; }

    /// <summary>The content store (containerd.services.content.v1).</summary>
    public ContentApi.ContentClient Content { get; }

    /// <summary>Leases that protect resources from garbage collection (containerd.services.leases.v1).</summary>
    public LeasesApi.LeasesClient Leases { get; }

    /// <summary>Snapshotters (containerd.services.snapshots.v1).</summary>
    public SnapshotsApi.SnapshotsClient Snapshots { get; }

    /// <summary>The event exchange (containerd.services.events.v1).</summary>
    public EventsApi.EventsClient Events { get; }

    /// <summary>Namespaces (containerd.services.namespaces.v1).</summary>
    public NamespacesApi.NamespacesClient Namespaces { get; }

    /// <summary>containerd's version and revision (containerd.services.version.v1).</summary>
    public VersionApi.VersionClient Version { get; }

    /// <summary>A view of this client that works in another namespace, sharing the connection.</summary>
    public ContainerdClient WithNamespace(string @namespace)
        => new(_channel, ownsChannel: false, @namespace, Lease) { SocketPath = SocketPath };

    /// <summary>
    /// A view of this client whose calls run under <paramref name="leaseId"/>, sharing the connection.
    /// Pass <c>null</c> for a view without a lease.
    /// </summary>
    public ContainerdClient WithLease(string? leaseId)
        => new(_channel, ownsChannel: false, Namespace, leaseId) { SocketPath = SocketPath };

    /// <summary>Closes the connection if this client owns it; views do nothing.</summary>
    public void Dispose()
    {
        if (_ownsChannel)
        {
            _channel.Dispose();
        }
    }
}
