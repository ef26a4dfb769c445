using System.Collections.Concurrent;
using System.Net.Sockets;
using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// A ttrpc server on Unix sockets. Register services through <see cref="Binder"/> with the
/// generated <c>BindService</c> (e.g. <c>Task.BindService(server.Binder, impl)</c>), call
/// <see cref="Listen(string)"/> or <see cref="Listen(Socket)"/>, then <see cref="StartAsync"/>.
/// </summary>
public sealed class TtrpcServer : IAsyncDisposable
{
    private readonly List<Socket> _listeners = [];
    private readonly List<string> _ownedPaths = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly ConcurrentDictionary<ServerConnection, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly (uint Uid, uint Gid) _self;
    private int _inFlight;
    private bool _started;
    private bool _shutdown;

    /// <summary>Creates a server; nothing is bound until <see cref="Listen(string)"/>.</summary>
    public TtrpcServer(TtrpcServerOptions? options = null)
    {
        Options = options ?? new TtrpcServerOptions();
        Registry = new ServiceRegistry();
        Binder = new TtrpcServiceBinder(Registry);
        _self = Options.RequireSameUser ? PeerCredentials.Self : default;
    }

    /// <summary>Pass to a generated <c>BindService(ServiceBinderBase, XBase)</c> to register a service.</summary>
    public ServiceBinderBase Binder { get; }

    /// <summary>Number of calls currently being handled.</summary>
    public int CallsInFlight => Volatile.Read(ref _inFlight);

    /// <summary>Number of open connections.</summary>
    public int ConnectionCount => _connections.Count;

    internal TtrpcServerOptions Options { get; }

    internal ServiceRegistry Registry { get; }

    /// <summary>
    /// Binds and listens on a Unix socket path, mode 0600 from the start (<see cref="OwnerOnlySocket"/>). A stale
    /// socket file nobody answers on is replaced; a live one is an error. The file is removed again at shutdown.
    /// </summary>
    public void Listen(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        RemoveStaleSocket(socketPath);
        Socket socket = OwnerOnlySocket.Listen(socketPath, Options.Backlog);
        _ownedPaths.Add(socketPath);
        Listen(socket);
    }

    /// <summary>
    /// Serves an already listening socket, e.g. the one a shim inherits as fd 3:
    /// <c>new Socket(new SafeSocketHandle((IntPtr)3, true))</c>. The server owns it from now on.
    /// </summary>
    public void Listen(Socket listeningSocket)
    {
        ArgumentNullException.ThrowIfNull(listeningSocket);
        lock (_listeners)
        {
            ObjectDisposedException.ThrowIf(_shutdown, this);
            _listeners.Add(listeningSocket);
            if (_started)
            {
                _acceptLoops.Add(AcceptLoopAsync(listeningSocket));
            }
        }
    }

    /// <summary>Starts accepting connections on every listening socket; returns once accepting.</summary>
    public Task StartAsync(CancellationToken ct = default)
    {
        lock (_listeners)
        {
            ObjectDisposedException.ThrowIf(_shutdown, this);
            if (!_started)
            {
                _started = true;
                foreach (Socket listener in _listeners)
                {
                    _acceptLoops.Add(AcceptLoopAsync(listener));
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops accepting, lets calls in flight finish (until <paramref name="ct"/> fires), then
    /// closes every connection and removes the socket files this server created.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken ct = default)
    {
        Task[] loops;
        lock (_listeners)
        {
            if (_shutdown)
            {
                return;
            }

            _shutdown = true;
            _stopping.Cancel();
            foreach (Socket listener in _listeners)
            {
                listener.Dispose();
            }

            loops = [.. _acceptLoops];
        }

        await Task.WhenAll(loops).ConfigureAwait(false);

        try
        {
            while (Volatile.Read(ref _inFlight) > 0)
            {
                await Task.Delay(5, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Out of patience: the remaining calls see their connection close.
        }

        foreach (ServerConnection connection in _connections.Keys)
        {
            connection.Close();
        }

        await Task.WhenAll(_connections.Values).ConfigureAwait(false);

        foreach (string path in _ownedPaths)
        {
            TryDelete(path);
        }

        _stopping.Dispose();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(ShutdownAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token));

    internal void CallStarted() => Interlocked.Increment(ref _inFlight);

    internal void CallFinished() => Interlocked.Decrement(ref _inFlight);

    private async Task AcceptLoopAsync(Socket listener)
    {
        CancellationToken stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                if (e is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable })
                {
                    // Resource exhaustion is transient; back off instead of spinning.
                    await Task.Delay(50, CancellationToken.None).ConfigureAwait(false);
                    continue;
                }

                if (e is ObjectDisposedException)
                {
                    return;
                }

                continue;
            }

            Accept(socket);
        }
    }

    private void Accept(Socket socket)
    {
        string peer;
        try
        {
            PeerCredentials credentials = PeerCredentials.Of(socket);
            if (Options.RequireSameUser && !credentials.IsSameUserAs(_self))
            {
                socket.Dispose();
                return;
            }

            peer = $"unix:pid={credentials.Pid},uid={credentials.Uid}";
        }
        catch (SocketException)
        {
            socket.Dispose();
            return;
        }

        var connection = new ServerConnection(socket, this, peer);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task run = RunConnectionAsync(connection, started.Task);
        _connections[connection] = run;
        started.SetResult();
        if (_stopping.IsCancellationRequested)
        {
            connection.Close();
        }
    }

    private async Task RunConnectionAsync(ServerConnection connection, Task registered)
    {
        await registered.ConfigureAwait(false);
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            // Calls still running write into a closed stream and are dropped; the socket goes now.
            _connections.TryRemove(connection, out _);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException)
            {
                File.Delete(path);
                return;
            }
        }

        throw new IOException($"{path}: address already in use");
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
