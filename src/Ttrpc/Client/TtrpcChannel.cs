using System.Net.Sockets;
using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// A client's view of one ttrpc server socket. It connects on the first call, multiplexes
/// all calls over that connection, and connects afresh on the next call after the peer
/// went away (e.g. containerd restarted). Use with generated clients:
/// <c>new Events.EventsClient(channel.CreateCallInvoker())</c>.
/// </summary>
public sealed class TtrpcChannel : IAsyncDisposable
{
    private readonly string _socketPath;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private ClientConnection? _connection;
    private Task? _readLoop;
    private bool _disposed;

    /// <summary>Creates a channel to the ttrpc server listening on <paramref name="socketPath"/>; does not connect yet.</summary>
    public TtrpcChannel(string socketPath, TtrpcChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        _socketPath = socketPath;
        Options = options ?? new TtrpcChannelOptions();
    }

    /// <summary>The server socket path.</summary>
    public string SocketPath => _socketPath;

    internal TtrpcChannelOptions Options { get; }

    /// <summary>A call invoker for generated clients; cheap, any number may share the channel.</summary>
    public CallInvoker CreateCallInvoker() => new TtrpcCallInvoker(this);

    /// <summary>Connects now instead of on the first call.</summary>
    public async Task ConnectAsync(CancellationToken ct = default) => await GetConnectionAsync(ct).ConfigureAwait(false);

    internal async ValueTask<ClientConnection> GetConnectionAsync(CancellationToken ct)
    {
        ClientConnection? current = Volatile.Read(ref _connection);
        if (current is { IsClosed: false })
        {
            return current;
        }

        await _connectLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            current = _connection;
            if (current is { IsClosed: false })
            {
                return current;
            }

            if (current is not null)
            {
                await current.DisposeAsync().ConfigureAwait(false);
            }

            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(Options.ConnectTimeout);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                socket.Dispose();
                throw new RpcException(new Status(StatusCode.Unavailable, $"ttrpc: connect {_socketPath}: {e.Message}"));
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            var connection = new ClientConnection(socket);
            _readLoop = connection.RunAsync();
            Volatile.Write(ref _connection, connection);
            return connection;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    /// <summary>Closes the connection; calls in flight fail with Unavailable.</summary>
    public async ValueTask DisposeAsync()
    {
        await _connectLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_connection is not null)
            {
                await _connection.DisposeAsync().ConfigureAwait(false);
                if (_readLoop is not null)
                {
                    await _readLoop.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _connectLock.Release();
        }
    }
}
