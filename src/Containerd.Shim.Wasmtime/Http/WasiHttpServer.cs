using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Serves a wasi:http/proxy component over HTTP/1.1 with Kestrel: every request gets a fresh instance of the
/// component (<see cref="ProxyHost"/>), keep-alive and chunked bodies are Kestrel's.
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

    private WasiHttpServer(ProxyHost host, bool ownsHost, WebApplication app)
    {
        _host = host;
        _ownsHost = ownsHost;
        _app = app;
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
        await StartAsync(ProxyHost.Load(component.Span, precompiled), endpoint, cancellationToken);

    /// <summary>Starts listening with a loaded component, which the server owns from here on (also when this fails).</summary>
    internal static async Task<WasiHttpServer> StartAsync(ProxyHost host, IPEndPoint endpoint, CancellationToken cancellationToken = default)
    {
        try
        {
            return await StartAsync(host, ownsHost: true, endpoint, null, ProxyGuestContext.Process, cancellationToken);
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
        Func<EndPoint, Socket>? listenSocket, ProxyGuestContext guest, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // The container's stdout belongs to the component; Kestrel's own log lines would mix into it.
        builder.Logging.ClearProviders();
        // Signals belong to whoever runs the server (HttpProxyRunner drains on SIGINT, exits on SIGTERM), not
        // to the generic host's console lifetime.
        builder.Services.AddSingleton<IHostLifetime, NoSignalLifetime>();
        builder.WebHost.ConfigureKestrel(options =>
        {
            options.AddServerHeader = false;
            options.Listen(endpoint);
        });
        if (listenSocket is not null)
        {
            builder.WebHost.UseSockets(sockets => sockets.CreateBoundListenSocket = listenSocket);
        }
        var app = builder.Build();
        app.Run(async context =>
        {
            try
            {
                await host.HandleAsync(new KestrelExchange(context), guest);
            }
            catch (Exception e)
            {
                // The guest's trap is the container's business: it goes to its stderr, and the client sees a 500
                // or, when the response had started, an aborted one.
                guest.Report($"wasi:http: {context.Request.Method} {context.Request.Path}: {e.Message}");
                context.Abort();
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
        return new WasiHttpServer(host, ownsHost, app);
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

    /// <summary>Stops accepting connections and waits (up to <paramref name="drain"/>) for requests in flight.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        using var timeout = new CancellationTokenSource(drain);
        await _app.StopAsync(timeout.Token);
    }

    /// <summary>Stops accepting connections and waits for requests in flight until <paramref name="drain"/> is
    /// cancelled, then aborts the connections left.</summary>
    internal Task StopAsync(CancellationToken drain) => _app.StopAsync(drain);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        if (_ownsHost)
        {
            _host.Dispose();
        }
    }

    private sealed class NoSignalLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>One Kestrel request as the proxy host sees it.</summary>
    private sealed class KestrelExchange(HttpContext context) : IProxyExchange
    {
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

        public Stream RequestBody => context.Request.Body;

        public Stream ResponseBody => context.Response.Body;

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
}
