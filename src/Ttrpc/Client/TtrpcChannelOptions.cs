using Grpc.Core;

namespace Ttrpc;

/// <summary>Settings of a <see cref="TtrpcChannel"/>.</summary>
public sealed class TtrpcChannelOptions
{
    /// <summary>How long to wait for the socket to accept a connection. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Metadata sent with every call in addition to the call's own headers, e.g. the
    /// namespace as <c>containerd-namespace-ttrpc</c>.
    /// </summary>
    public Metadata? DefaultMetadata { get; set; }
}
