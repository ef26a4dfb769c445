using System.Net;
using System.Net.Sockets;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// The connection pool of one server's outgoing wasi:http requests (SocketsHttpHandler: NativeAOT-safe, pooled
/// keep-alive connections). Normal mode has one per process, which already runs in the container's network
/// namespace; the shared-mode daemon has one per container, whose sockets (and name lookups) are made in that
/// container's namespace and which is disposed when the container ends, so no tenant reuses another's connections.
/// No proxy from the process environment, no redirects followed, no decompression: the component sees what the
/// peer sent, as with Wasmtime's own host.
/// </summary>
internal sealed class OutgoingClient : IDisposable
{
    /// <summary>The process's own network: normal mode.</summary>
    public static OutgoingClient Process { get; } = new(null);

    private readonly string? _netns;

    /// <param name="netnsPath">The network namespace to connect from; null for the process's own.</param>
    public OutgoingClient(string? netnsPath)
    {
        _netns = netnsPath;
        Client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectCallback = ConnectAsync,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public HttpClient Client { get; }

    /// <summary>Closes the pool's connections; requests still in flight fail.</summary>
    public void Dispose() => Client.Dispose();

    /// <summary>
    /// Resolves and connects itself, so that the request's connect-timeout applies, name resolution and
    /// connection failures keep their own error codes, and both happen in the right network namespace.
    /// </summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var limit = context.InitialRequestMessage.Options.TryGetValue(OutgoingHttp.ConnectTimeoutKey, out var value)
            ? value
            : OutgoingHttp.DefaultTimeout;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        var host = context.DnsEndPoint.Host;
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal]
                : _netns is null ? await Dns.GetHostAddressesAsync(host, timeout.Token)
                // The lookup's thread cannot be cancelled; a timed-out one finishes on its own.
                : await NetworkNamespace.ResolveAsync(_netns, host).WaitAsync(timeout.Token);
        }
        catch (SocketException e)
        {
            throw new WasiHttpException(new ErrorCode("DNS-error", e.SocketErrorCode.ToString()), $"resolving {host}: {e.Message}", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new WasiHttpException(new ErrorCode("DNS-timeout"), $"resolving {host}: timed out", e);
        }
        catch (IOException e)
        {
            // The namespace could not be joined (it is gone, say).
            throw new WasiHttpException(new ErrorCode("internal-error", e.Message), $"resolving {host}: {e.Message}", e);
        }
        if (addresses.Length == 0)
        {
            throw new WasiHttpException(new ErrorCode("DNS-error", "no addresses"), $"resolving {host}: no addresses");
        }

        Socket[] sockets;
        try
        {
            sockets = _netns is null
                ? Array.ConvertAll(addresses, a => new Socket(a.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
                : await NetworkNamespace.SocketsAsync(_netns, addresses);
        }
        catch (IOException e)
        {
            throw new WasiHttpException(new ErrorCode("internal-error", e.Message), $"connecting to {host}: {e.Message}", e);
        }

        SocketException? last = null;
        var next = 0;
        try
        {
            for (; next < sockets.Length; next++)
            {
                var socket = sockets[next];
                try
                {
                    await socket.ConnectAsync(addresses[next], context.DnsEndPoint.Port, timeout.Token);
                    next++;
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException e)
                {
                    socket.Dispose();
                    last = e;
                }
                catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
                {
                    socket.Dispose();
                    throw new WasiHttpException(new ErrorCode("connection-timeout"), $"connecting to {host}: timed out", e);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }
        }
        finally
        {
            // The sockets of addresses never tried.
            for (; next < sockets.Length; next++)
            {
                sockets[next].Dispose();
            }
        }
        throw new WasiHttpException(OutgoingHttp.ForSocket(last!), $"connecting to {host}:{context.DnsEndPoint.Port}: {last!.Message}", last);
    }
}
