using System.Net.Sockets;
using Grpc.Net.Client;

namespace Containerd.Api.Client;

/// <summary>
/// Builds gRPC channels that speak HTTP/2 over a Unix domain socket, the way
/// containerd serves its API.
/// </summary>
public static class UnixSocketChannel
{
    /// <summary>
    /// containerd accepts messages up to 16 MiB by default; match it so large
    /// listings and content chunks are not refused on our side first.
    /// </summary>
    public const int MaxMessageSize = 16 * 1024 * 1024;

    /// <summary>
    /// Creates a channel whose every connection is a new connection to <paramref name="socketPath"/>.
    /// </summary>
    /// <param name="socketPath">Path of the Unix socket, e.g. <c>/run/containerd/containerd.sock</c>.
    /// A <c>unix://</c> prefix is accepted and stripped.</param>
    public static GrpcChannel Create(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        var path = socketPath.StartsWith("unix://", StringComparison.Ordinal) ? socketPath["unix://".Length..] : socketPath;
        var endpoint = new UnixDomainSocketEndPoint(path);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            // Event subscriptions stay open for as long as a test or shim runs.
            KeepAlivePingDelay = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = true,
        };

        // The host name is never resolved (the connect callback ignores it); it only fills :authority.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = MaxMessageSize,
            MaxSendMessageSize = MaxMessageSize,
        });
    }
}
