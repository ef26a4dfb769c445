using System.Globalization;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// What one container's wasi:http server allows a client: connections, requests served at once, header and body
/// sizes, and how long it waits for a slow client or a draining request. Read from the shim's environment (the
/// daemon's in shared mode), so the node's operator sets them and a tenant cannot raise its own.
/// </summary>
public sealed record HttpServerLimits
{
    /// <summary>The prefix of every variable below.</summary>
    public const string Prefix = "CONTAINERD_SHIM_WASMTIME_HTTP_";

    /// <summary>Sets <see cref="MaxConnections"/>.</summary>
    public const string MaxConnectionsVariable = Prefix + "MAX_CONNECTIONS";
    /// <summary>Sets <see cref="MaxRequests"/>.</summary>
    public const string MaxRequestsVariable = Prefix + "MAX_REQUESTS";
    /// <summary>Sets <see cref="QueueTimeout"/>.</summary>
    public const string QueueTimeoutVariable = Prefix + "QUEUE_TIMEOUT";
    /// <summary>Sets <see cref="MaxHeaderBytes"/>.</summary>
    public const string MaxHeaderBytesVariable = Prefix + "MAX_HEADER_SIZE";
    /// <summary>Sets <see cref="MaxHeaders"/>.</summary>
    public const string MaxHeadersVariable = Prefix + "MAX_HEADERS";
    /// <summary>Sets <see cref="MaxBodyBytes"/>.</summary>
    public const string MaxBodyBytesVariable = Prefix + "MAX_BODY_SIZE";
    /// <summary>Sets <see cref="HeaderTimeout"/>.</summary>
    public const string HeaderTimeoutVariable = Prefix + "HEADER_TIMEOUT";
    /// <summary>Sets <see cref="MinBodyBytesPerSecond"/> (0 turns the check off).</summary>
    public const string MinBodyRateVariable = Prefix + "MIN_BODY_RATE";
    /// <summary>Sets <see cref="KeepAliveTimeout"/>.</summary>
    public const string KeepAliveTimeoutVariable = Prefix + "KEEPALIVE_TIMEOUT";
    /// <summary>Sets <see cref="DrainTimeout"/>.</summary>
    public const string DrainTimeoutVariable = Prefix + "DRAIN_TIMEOUT";

    /// <summary>The defaults: generous for one service, small enough that a node with many survives a flood.</summary>
    public static HttpServerLimits Default { get; } = new();

    /// <summary>Open connections; Kestrel closes any beyond them as soon as it accepts them.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Requests whose guest runs at once (each is a thread and an instance); more wait in line.</summary>
    public int MaxRequests { get; init; } = 256;

    /// <summary>How long a request waits for one of <see cref="MaxRequests"/> before it gets 503.</summary>
    public TimeSpan QueueTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The request line excluded, all header fields together; beyond it the client gets 431.</summary>
    public long MaxHeaderBytes { get; init; } = 64 * 1024;

    /// <summary>Header fields of one request; beyond it the client gets 431.</summary>
    public int MaxHeaders { get; init; } = 100;

    /// <summary>A request body, declared or chunked; beyond it the client gets 413.</summary>
    public long MaxBodyBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>From a request's first byte to the end of its headers (slowloris); then the connection is closed.</summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bytes per second a request body must average after a 5 s grace, or its connection is closed.</summary>
    public double MinBodyBytesPerSecond { get; init; } = 240;

    /// <summary>How long an idle keep-alive connection stays open.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a stop lets requests in flight finish before their connections are aborted and guests trapped.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Reads the limits; an unset or empty variable keeps its default.</summary>
    /// <exception cref="ShimException">A variable has a value it cannot have; the message names it.</exception>
    public static HttpServerLimits FromEnvironment() => FromLookup(Environment.GetEnvironmentVariable);

    /// <summary><see cref="FromEnvironment"/> over any source of variables (tests).</summary>
    public static HttpServerLimits FromLookup(Func<string, string?> lookup)
    {
        var d = Default;
        return new HttpServerLimits
        {
            MaxConnections = (int)Count(lookup, MaxConnectionsVariable, d.MaxConnections),
            MaxRequests = (int)Count(lookup, MaxRequestsVariable, d.MaxRequests),
            QueueTimeout = Duration(lookup, QueueTimeoutVariable, d.QueueTimeout, allowZero: true),
            MaxHeaderBytes = Size(lookup, MaxHeaderBytesVariable, d.MaxHeaderBytes),
            MaxHeaders = (int)Count(lookup, MaxHeadersVariable, d.MaxHeaders),
            MaxBodyBytes = Size(lookup, MaxBodyBytesVariable, d.MaxBodyBytes),
            HeaderTimeout = Duration(lookup, HeaderTimeoutVariable, d.HeaderTimeout, allowZero: false),
            MinBodyBytesPerSecond = Count(lookup, MinBodyRateVariable, (long)d.MinBodyBytesPerSecond, allowZero: true),
            KeepAliveTimeout = Duration(lookup, KeepAliveTimeoutVariable, d.KeepAliveTimeout, allowZero: false),
            DrainTimeout = Duration(lookup, DrainTimeoutVariable, d.DrainTimeout, allowZero: true),
        };
    }

    private static long Count(Func<string, string?> lookup, string name, long fallback, bool allowZero = false)
    {
        if (lookup(name) is not { Length: > 0 } text)
        {
            return fallback;
        }
        return long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= int.MaxValue && (allowZero || n > 0)
            ? n
            : throw Bad(name, text, allowZero ? "not a whole number" : "not a whole number above 0");
    }

    private static long Size(Func<string, string?> lookup, string name, long fallback)
    {
        if (lookup(name) is not { Length: > 0 } text)
        {
            return fallback;
        }
        return ByteSize.Parse(text) is { } n && n > 0
            ? n
            : throw Bad(name, text, "not a size above 0 (use bytes, or a number with K, M or G)");
    }

    /// <summary>Seconds (<c>10</c>, <c>2.5</c>, <c>10s</c>) or milliseconds (<c>500ms</c>).</summary>
    private static TimeSpan Duration(Func<string, string?> lookup, string name, TimeSpan fallback, bool allowZero)
    {
        if (lookup(name) is not { Length: > 0 } text)
        {
            return fallback;
        }
        var t = text.Trim();
        var scale = 1000.0;
        if (t.EndsWith("ms", StringComparison.Ordinal))
        {
            (t, scale) = (t[..^2], 1.0);
        }
        else if (t.EndsWith('s'))
        {
            t = t[..^1];
        }
        return double.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v)
            && v * scale is var ms && ms <= TimeSpan.FromDays(1).TotalMilliseconds && (allowZero ? ms >= 0 : ms >= 1)
            ? TimeSpan.FromMilliseconds(ms)
            : throw Bad(name, text, "not a duration (seconds, or a number with ms) of at most a day" + (allowZero ? "" : " and above 0"));
    }

    private static ShimException Bad(string name, string value, string reason) =>
        new(StatusCode.InvalidArgument, $"{name}={UntrustedText.Excerpt(value)}: {reason}");
}
