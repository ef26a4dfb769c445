using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Serves a wasi:http/proxy component over HTTP/1.1 with Kestrel: every request gets a fresh instance of the
/// component (<see cref="ProxyHost"/>), keep-alive and chunked bodies are Kestrel's. What one client may take is
/// bounded by <see cref="HttpServerLimits"/>: connections, guests running at once, header and body sizes, slow
/// clients, and how long a stop waits.
/// </summary>
public sealed class WasiHttpServer : IAsyncDisposable
{
    /// <summary>The environment variable runwasi's wasmtime shim reads the listen address from.</summary>
    public const string AddressVariable = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";

    /// <summary>Where the server listens when the container's environment does not say.</summary>
    public const string DefaultAddress = "0.0.0.0:8080";

    private readonly ProxyHost _host;
    private readonly bool _ownsHost;
    private readonly WebApplication _app;
    private readonly Guests _guests;

    /// <summary>How long a stop waits, after aborting the connections, for guests to notice (an epoch tick, or a
    /// host call returning) before it gives up on them.</summary>
    private static readonly TimeSpan GuestGrace = TimeSpan.FromSeconds(2);

    private WasiHttpServer(ProxyHost host, bool ownsHost, WebApplication app, Guests guests)
    {
        _host = host;
        _ownsHost = ownsHost;
        _app = app;
        _guests = guests;
    }

    /// <summary>The endpoints Kestrel bound (with the real port when port 0 was asked for).</summary>
    public IReadOnlyList<string> Addresses =>
        [.. _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];

    /// <summary>Whether a component (wasm bytes) exports wasi:http/incoming-handler.</summary>
    public static bool IsProxyComponent(ReadOnlySpan<byte> component)
    {
        try
        {
            using var host = ProxyHost.Load(component);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Compiles a component to this engine's native artifact (for a cache).</summary>
    public static byte[] Precompile(ReadOnlySpan<byte> component)
    {
        using var host = ProxyHost.Load(component);
        return host.Serialize();
    }

    /// <summary>
    /// Loads the component (wasm bytes, or an artifact from <see cref="Precompile"/>) and starts listening on
    /// <paramref name="endpoint"/>.
    /// </summary>
    public static async Task<WasiHttpServer> StartAsync(ReadOnlyMemory<byte> component, IPEndPoint endpoint, bool precompiled = false,
        CancellationToken cancellationToken = default) =>
        await StartAsync(ProxyHost.Load(component.Span, precompiled), endpoint, null, cancellationToken);

    /// <summary>As <see cref="StartAsync(ReadOnlyMemory{byte}, IPEndPoint, bool, CancellationToken)"/>, with these
    /// limits instead of <see cref="HttpServerLimits.Default"/>.</summary>
    public static async Task<WasiHttpServer> StartWithLimitsAsync(ReadOnlyMemory<byte> component, IPEndPoint endpoint, HttpServerLimits limits,
        bool precompiled, CancellationToken cancellationToken) =>
        await StartAsync(ProxyHost.Load(component.Span, precompiled), endpoint, limits, cancellationToken);

    /// <summary>Starts listening with a loaded component, which the server owns from here on (also when this fails).</summary>
    internal static async Task<WasiHttpServer> StartAsync(ProxyHost host, IPEndPoint endpoint, HttpServerLimits? limits = null,
        CancellationToken cancellationToken = default)
    {
        try
        {
            return await StartAsync(host, ownsHost: true, endpoint, null, ProxyGuestContext.Process, limits, cancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Serves <paramref name="host"/> (disposed with the server when <paramref name="ownsHost"/>) on
    /// <paramref name="endpoint"/>, or on the socket <paramref name="listenSocket"/> makes for it (already bound, in
    /// another network namespace for the shared-mode daemon; Kestrel takes it over and closes it when it stops).
    /// </summary>
    internal static async Task<WasiHttpServer> StartAsync(ProxyHost host, bool ownsHost, IPEndPoint endpoint,
        Func<EndPoint, Socket>? listenSocket, ProxyGuestContext guest, HttpServerLimits? limits = null,
        CancellationToken cancellationToken = default)
    {
        limits ??= HttpServerLimits.Default;
        var guests = new Guests(limits.MaxRequests);
        var builder = WebApplication.CreateSlimBuilder();
        // The container's stdout belongs to the component; Kestrel's own log lines would mix into it.
        builder.Logging.ClearProviders();
        // Signals belong to whoever runs the server (HttpProxyRunner drains on SIGINT, exits on SIGTERM), not
        // to the generic host's console lifetime.
        builder.Services.AddSingleton<IHostLifetime, NoSignalLifetime>();
        builder.WebHost.ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            var k = options.Limits;
            // Kestrel closes a connection beyond the cap right after accepting it, without reading from it.
            k.MaxConcurrentConnections = limits.MaxConnections;
            k.MaxConcurrentUpgradedConnections = limits.MaxConnections;
            k.MaxRequestHeadersTotalSize = (int)Math.Min(limits.MaxHeaderBytes, int.MaxValue);
            k.MaxRequestHeaderCount = limits.MaxHeaders;
            // Kestrel answers 413 to a declared length past it and fails the read of a chunked body that grows past it.
            k.MaxRequestBodySize = limits.MaxBodyBytes;
            // Measured from a request's first byte, so a client trickling its headers is cut off all the same.
            k.RequestHeadersTimeout = limits.HeaderTimeout;
            k.KeepAliveTimeout = limits.KeepAliveTimeout;
            k.MinRequestBodyDataRate = limits.MinBodyBytesPerSecond > 0
                ? new MinDataRate(limits.MinBodyBytesPerSecond, TimeSpan.FromSeconds(5))
                : null;
            options.Listen(endpoint, listen =>
            {
                if (guest.Connections is { } connections)
                {
                    // The daemon's cap across every container's server: a connection past it is closed unread, as
                    // Kestrel closes one past the server's own cap.
                    listen.Use(next => async connection =>
                    {
                        if (!connections.TryAcquire())
                        {
                            connection.Abort();
                            return;
                        }
                        try
                        {
                            await next(connection);
                        }
                        finally
                        {
                            connections.Release();
                        }
                    });
                }
            });
        });
        if (listenSocket is not null)
        {
            builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = listenSocket);
        }
        var app = builder.Build();
        app.Run(async context =>
        {
            if (context.Request.ContentLength > limits.MaxBodyBytes)
            {
                // Refused before a guest runs for it.
                await Reject(context, StatusCodes.Status413PayloadTooLarge, $"request body larger than {limits.MaxBodyBytes} bytes\n");
                return;
            }
            bool admitted;
            try
            {
                admitted = await guests.EnterAsync(limits.QueueTimeout, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!admitted)
            {
                context.Response.Headers.RetryAfter = "1";
                await Reject(context, StatusCodes.Status503ServiceUnavailable,
                    $"{limits.MaxRequests} requests are being served; try again\n");
                return;
            }
            if (guest.Threads is { } threads && !threads.TryAcquire())
            {
                guests.Leave();
                context.Response.Headers.RetryAfter = "1";
                await Reject(context, StatusCodes.Status503ServiceUnavailable, threads.Refusal);
                return;
            }
            var exchange = new KestrelExchange(context, limits.MaxBodyBytes);
            try
            {
                await host.HandleAsync(exchange, guest);
                await exchange.FinishAsync();
            }
            catch (Exception e)
            {
                // The guest's trap is the container's business: it goes to its stderr, and the client sees a 500
                // or, when the response had started or the container was killed, an aborted one.
                guest.Report($"wasi:http: {context.Request.Method} {context.Request.Path}: {e.Message}");
                if (guest.Killed || !await exchange.TryFinishRejectedAsync())
                {
                    context.Abort();
                }
            }
            finally
            {
                guest.Threads?.Release();
                guests.Leave();
            }
        });
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new WasiHttpServer(host, ownsHost, app, guests);
    }

    /// <summary>A host-made plain-text answer and the end of the connection.</summary>
    private static async Task Reject(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        context.Response.Headers.Connection = "close";
        await context.Response.WriteAsync(message);
    }

    /// <summary>Parses "host:port" (IPv4, [IPv6] or a bare port) as the runwasi shim accepts it.</summary>
    public static IPEndPoint ParseAddress(string? address)
    {
        var text = string.IsNullOrWhiteSpace(address) ? DefaultAddress : address.Trim();
        if (IPEndPoint.TryParse(text, out var endpoint) && (endpoint.Port != 0 || text.EndsWith(":0", StringComparison.Ordinal)))
        {
            return endpoint;
        }
        if (int.TryParse(text, out var port) && port is >= 0 and <= 65535)
        {
            return new IPEndPoint(IPAddress.Any, port);
        }
        throw new FormatException($"{AddressVariable}={text} is not an address and port");
    }

    /// <summary>Stops accepting connections and waits (up to <paramref name="drain"/>) for requests in flight, then
    /// aborts their connections and traps their guests.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        using var timeout = new CancellationTokenSource(drain);
        await StopAsync(timeout.Token);
    }

    /// <summary>Stops accepting connections and waits for requests in flight until <paramref name="drain"/> is
    /// cancelled, then aborts the connections left: their requests' guests trap at the next epoch tick.</summary>
    internal async Task StopAsync(CancellationToken drain)
    {
        await _app.StopAsync(drain);
        // Kestrel gives aborted connections about a second to end; a guest still in a host call may take longer.
        await _guests.WaitIdleAsync(GuestGrace);
    }

    /// <summary>Requests whose guest is running now.</summary>
    public int RunningGuests => _guests.Running;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        if (_ownsHost)
        {
            if (_guests.Running > 0)
            {
                // A guest that did not stop (blocked in a host call) still uses the component and its engine:
                // freeing them under it would crash the process, so they are left to the process's end.
                return;
            }
            _host.Dispose();
        }
    }

    /// <summary>The requests whose guests run: at most the cap at once, the rest wait for a while.</summary>
    private sealed class Guests(int max)
    {
        private readonly SemaphoreSlim _slots = new(max, max);
        private readonly Lock _gate = new();
        private int _running;
        private TaskCompletionSource? _idle;

        public int Running => Volatile.Read(ref _running);

        public async Task<bool> EnterAsync(TimeSpan wait, CancellationToken aborted)
        {
            if (!await _slots.WaitAsync(wait, aborted))
            {
                return false;
            }
            Interlocked.Increment(ref _running);
            return true;
        }

        public void Leave()
        {
            TaskCompletionSource? idle = null;
            lock (_gate)
            {
                if (--_running == 0)
                {
                    (idle, _idle) = (_idle, null);
                }
            }
            _slots.Release();
            idle?.TrySetResult();
        }

        public async Task WaitIdleAsync(TimeSpan limit)
        {
            Task idle;
            lock (_gate)
            {
                if (_running == 0)
                {
                    return;
                }
                idle = (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
            await Task.WhenAny(idle, Task.Delay(limit));
        }
    }

    private sealed class NoSignalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>One Kestrel request as the proxy host sees it.</summary>
    private sealed class KestrelExchange(HttpContext context, long maxBody) : IProxyExchange
    {
        private LimitedBody? _body;
        // The guest's response replaced by a 413: its body bytes are dropped.
        private bool _rejected;
        // Hop-by-hop fields are the transport's business, not the component's.
        private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
        {
            "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
        };

        public string Method => context.Request.Method;

        public string PathWithQuery =>
            context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw && raw[0] == '/'
                ? raw
                : $"{context.Request.PathBase}{context.Request.Path}{context.Request.QueryString}";

        public string Scheme => context.Request.Scheme;

        public string? Authority => context.Request.Host.HasValue ? context.Request.Host.Value : null;

        public IEnumerable<KeyValuePair<string, byte[]>> RequestHeaders => Entries(context.Request.Headers);

        private static IEnumerable<KeyValuePair<string, byte[]>> Entries(IHeaderDictionary headers)
        {
            foreach (var (name, values) in headers)
            {
                if (HopByHop.Contains(name))
                {
                    continue;
                }
                foreach (var value in values)
                {
                    yield return new(name.ToLowerInvariant(), Encoding.Latin1.GetBytes(value ?? ""));
                }
            }
        }

        public Stream RequestBody => _body ??= new LimitedBody(context.Request.Body);

        public Stream ResponseBody => _rejected ? Stream.Null : context.Response.Body;

        public CancellationToken Aborted => context.RequestAborted;

        private bool TooLarge => _body?.TooLarge == true;

        /// <summary>After the guest returned: a body past the limit gets its 413, or the connection is cut when the
        /// guest's response had already started (its status was sent).</summary>
        public async Task FinishAsync()
        {
            if (!await TryFinishRejectedAsync() && TooLarge)
            {
                context.Abort();
            }
        }

        /// <summary>Writes the 413 when the body was too large and no other response started; false otherwise.</summary>
        public async Task<bool> TryFinishRejectedAsync()
        {
            if (!TooLarge)
            {
                return false;
            }
            if (!_rejected && context.Response.HasStarted)
            {
                return false;
            }
            if (!_rejected)
            {
                context.Response.Clear();
                Reject413();
            }
            await context.Response.WriteAsync($"request body larger than {maxBody} bytes\n");
            return true;
        }

        private void Reject413()
        {
            _rejected = true;
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            context.Response.ContentType = "text/plain";
            context.Response.Headers.Connection = "close";
        }

        public IEnumerable<KeyValuePair<string, byte[]>>? RequestTrailers()
        {
            // Kestrel parses the trailers of a chunked HTTP/1.1 body and makes them available once the body ended.
            var feature = context.Features.Get<IHttpRequestTrailersFeature>();
            if (feature is not { Available: true } || feature.Trailers.Count == 0)
            {
                return null;
            }
            return [.. Entries(feature.Trailers)];
        }

        public bool SetResponseTrailers(IReadOnlyList<KeyValuePair<string, byte[]>> trailers)
        {
            if (_rejected)
            {
                return true;
            }
            if (!context.Response.SupportsTrailers())
            {
                return false;
            }
            foreach (var (name, value) in trailers)
            {
                context.Response.AppendTrailer(name, Encoding.Latin1.GetString(value));
            }
            return true;
        }

        public void StartResponse(int status, IReadOnlyList<KeyValuePair<string, byte[]>> headers)
        {
            if (TooLarge)
            {
                // Whatever the guest makes of the failed read, the client learns why its request failed.
                Reject413();
                return;
            }
            context.Response.StatusCode = status;
            foreach (var (name, value) in headers)
            {
                if (!HopByHop.Contains(name))
                {
                    context.Response.Headers.Append(name, Encoding.Latin1.GetString(value));
                }
            }
        }
    }

    /// <summary>The request body as the guest reads it: Kestrel's, remembering that it grew past the size limit.</summary>
    private sealed class LimitedBody(Stream inner) : Stream
    {
        private volatile bool _tooLarge;

        public bool TooLarge => _tooLarge;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                _tooLarge = true;
                throw;
            }
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
