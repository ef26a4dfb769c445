using System.Diagnostics;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// The host side of every resource the proxy world imports. A resource handle the guest holds maps to a
/// representation number (rep) in <see cref="ResourceTable"/>; several reps may name one object (the headers of a
/// response are reachable through every fields handle the guest asked for).
/// </summary>
internal static class ResourceTypes
{
    // The u32 identities handed to wasmtime_component_resource_type_new_host: equal numbers are the same type.
    public const uint Pollable = 1, IoError = 2, InputStream = 3, OutputStream = 4, Fields = 5, IncomingRequest = 6,
        IncomingBody = 7, OutgoingRequest = 8, OutgoingBody = 9, ResponseOutparam = 10, OutgoingResponse = 11,
        IncomingResponse = 12, FutureIncomingResponse = 13, RequestOptions = 14, FutureTrailers = 15,
        TerminalInput = 16, TerminalOutput = 17, Descriptor = 18;
}

/// <summary>Host objects that must act when the guest drops their handle (a request body dropped unfinished).</summary>
internal interface IDropped
{
    void Dropped();
}

/// <summary>Maps reps to host objects for one request's store.</summary>
internal sealed class ResourceTable
{
    /// <summary>Host resources one request's guest may hold at once: each is host memory its store's limit does not
    /// see, so a guest making fields in a loop traps here instead of growing the daemon.</summary>
    public const int MaxLive = 65_536;

    private readonly Dictionary<uint, object> _items = [];
    private uint _next = 1;

    public uint Add(object item)
    {
        if (_items.Count >= MaxLive)
        {
            throw new InvalidOperationException($"the guest holds {MaxLive} host resources, the most one request may");
        }
        var rep = _next++;
        _items[rep] = item;
        return rep;
    }

    public T Get<T>(uint rep) where T : class =>
        _items.TryGetValue(rep, out var item) && item is T typed
            ? typed
            : throw new InvalidOperationException($"resource {rep} is not a live {typeof(T).Name}");

    public object? Remove(uint rep) => _items.Remove(rep, out var item) ? item : null;

    /// <summary>The guest dropped a handle (the linker's resource destructor).</summary>
    public void Drop(uint rep)
    {
        if (Remove(rep) is IDropped dropped)
        {
            dropped.Dropped();
        }
    }
}

/// <summary>
/// A pollable: ready now, at a monotonic deadline (clock subscriptions), or when a task completes (a response
/// arriving, trailers received).
/// </summary>
internal sealed class Pollable
{
    public Pollable(long deadlineTicks) => DeadlineTicks = deadlineTicks;

    public Pollable(Task signal) => Signal = signal;

    /// <summary>Stopwatch ticks at which it becomes ready; 0 means always ready (unless it has a signal).</summary>
    public long DeadlineTicks { get; }

    public Task? Signal { get; }

    public bool Ready => Signal is { } signal ? signal.IsCompleted : DeadlineTicks == 0 || Stopwatch.GetTimestamp() >= DeadlineTicks;

    public void Block(CancellationToken stop)
    {
        while (!Ready)
        {
            WaitAny([this], stop);
        }
    }

    /// <summary>Blocks until at least one of <paramref name="pollables"/> is ready (it may return early); throws
    /// <see cref="OperationCanceledException"/> when <paramref name="stop"/> (a kill, an aborted request) fires
    /// first, which traps the guest.</summary>
    public static void WaitAny(Pollable[] pollables, CancellationToken stop)
    {
        ThrowIfStopped(stop);
        long deadline = long.MaxValue;
        var signals = new List<Task>();
        foreach (var p in pollables)
        {
            if (p.Ready)
            {
                return;
            }
            if (p.Signal is { } signal)
            {
                signals.Add(signal);
            }
            else
            {
                deadline = Math.Min(deadline, p.DeadlineTicks);
            }
        }
        var wait = deadline == long.MaxValue
            ? Timeout.Infinite
            : (int)Math.Clamp(Math.Ceiling(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline).TotalMilliseconds), 0, int.MaxValue);
        if (signals.Count == 0)
        {
            stop.WaitHandle.WaitOne(wait);
        }
        else
        {
            // WaitAny returns for faulted or cancelled tasks too, without throwing: the owner reads the outcome.
            try
            {
                Task.WaitAny([.. signals], wait, stop);
            }
            catch (OperationCanceledException)
            {
            }
        }
        ThrowIfStopped(stop);
    }

    private static void ThrowIfStopped(CancellationToken stop)
    {
        if (stop.IsCancellationRequested)
        {
            throw new OperationCanceledException("woken from a poll: the container was killed or the request aborted", stop);
        }
    }
}

/// <summary>A wasi:io error; <see cref="Code"/> is what wasi:http's http-error-code reports for it.</summary>
internal sealed class IoError(string message, ErrorCode? code = null)
{
    public string Message { get; } = message;

    public ErrorCode? Code { get; } = code;
}

/// <summary>
/// A guest-readable byte stream over a .NET stream. Reads block until at least one byte or the end arrives: the
/// guest runs on its own thread, so blocking there costs no other request anything, and a guest that polls first
/// finds every stream ready.
/// </summary>
internal sealed class InputStream(Stream? source, TimeSpan? betweenBytes = null)
{
    private readonly Stream? _source = source;
    private bool _closed = source is null;

    /// <summary>
    /// Up to <paramref name="max"/> bytes, or null at the end of the stream. Fails with <see cref="StreamFailure"/>
    /// when the source does (a peer that went away, the between-bytes timeout of an outgoing request).
    /// </summary>
    public byte[]? Read(int max)
    {
        if (_closed)
        {
            return null;
        }
        if (max == 0)
        {
            return [];
        }
        var buffer = new byte[Math.Min(max, 64 * 1024)];
        int n;
        using var timeout = betweenBytes is { } limit ? new CancellationTokenSource(limit) : null;
        try
        {
            n = _source!.ReadAsync(buffer, timeout?.Token ?? default).AsTask().GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (timeout?.IsCancellationRequested == true)
        {
            _closed = true;
            throw new StreamFailure("no body bytes within the between-bytes timeout", new ErrorCode("connection-read-timeout"));
        }
        catch (Exception e) when (e is IOException or HttpRequestException or ObjectDisposedException)
        {
            _closed = true;
            throw new StreamFailure(e.Message, OutgoingHttp.ErrorOf(e));
        }
        if (n == 0)
        {
            _closed = true;
            return null;
        }
        return n == buffer.Length ? buffer : buffer[..n];
    }
}

/// <summary>A stream operation failed; the guest sees last-operation-failed with this message and error code.</summary>
internal sealed class StreamFailure(string message, ErrorCode? code) : Exception(message)
{
    public ErrorCode? Code { get; } = code;
}

/// <summary>A guest-writable byte stream over a .NET stream (a response body, the container's stdout).</summary>
internal sealed class OutputStream(Stream sink, Action? beforeFirstWrite = null)
{
    private Action? _beforeFirstWrite = beforeFirstWrite;

    public Stream Sink { get; } = sink;

    public bool Closed { get; set; }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (Closed)
        {
            throw new IOException("stream closed");
        }
        Interlocked.Exchange(ref _beforeFirstWrite, null)?.Invoke();
        if (bytes.Length > 0)
        {
            Sink.WriteAsync(bytes.ToArray()).AsTask().GetAwaiter().GetResult();
        }
    }

    public void Flush()
    {
        Interlocked.Exchange(ref _beforeFirstWrite, null)?.Invoke();
        Sink.FlushAsync().GetAwaiter().GetResult();
    }
}

/// <summary>An HTTP header or trailer list; immutable ones belong to requests the host made.</summary>
internal sealed class Fields(List<KeyValuePair<string, byte[]>> entries, bool immutable)
{
    public List<KeyValuePair<string, byte[]>> Entries { get; } = entries;

    public bool Immutable { get; } = immutable;
}

/// <summary>The request Kestrel received, as the guest sees it.</summary>
internal sealed class IncomingRequest
{
    public required string Method { get; init; }

    public required string PathWithQuery { get; init; }

    public required string Scheme { get; init; }

    public string? Authority { get; init; }

    public required Fields Headers { get; init; }

    public required Stream Body { get; init; }

    /// <summary>The request's trailers, once its body has been read to the end (null when there are none).</summary>
    public required Func<Fields?> Trailers { get; init; }

    public bool Consumed { get; set; }
}

/// <summary>
/// A body the guest reads: a request's from Kestrel or a response's from HttpClient. <paramref name="trailers"/>
/// reads the trailers once the body has been read to its end (null when there are none).
/// </summary>
internal sealed class IncomingBody(Stream body, Func<Fields?> trailers, TimeSpan? betweenBytes = null)
{
    public Stream Body { get; } = body;

    public TimeSpan? BetweenBytes { get; } = betweenBytes;

    public bool StreamTaken { get; set; }

    /// <summary>Reads what the guest left of the body, then the trailers: the outcome of incoming-body.finish.</summary>
    public Task<Fields?> Finish() => Task.Run(async () =>
    {
        await Body.CopyToAsync(Stream.Null);
        return trailers();
    });
}

/// <summary>The trailers of an incoming body, ready once the rest of the body has arrived.</summary>
internal sealed class FutureTrailers(Task<Fields?> trailers) : IHostFuture
{
    public Task<Fields?> Trailers { get; } = trailers;

    public bool Taken { get; set; }
}

/// <summary>The response the guest builds; the host sends it once the guest sets the outparam.</summary>
internal sealed class OutgoingResponse(Fields headers)
{
    public ushort Status { get; set; } = 200;

    public Fields Headers { get; } = headers;

    public bool BodyTaken { get; set; }
}

/// <summary>
/// A body the guest writes (a response's, or an outgoing request's). <paramref name="finish"/> receives the
/// trailers at outgoing-body.finish; <paramref name="abandon"/> runs when the guest drops the body unfinished.
/// </summary>
internal sealed class OutgoingBody(OutputStream stream, Action<Fields?>? finish = null, Action? abandon = null) : IDropped
{
    public OutputStream Stream { get; } = stream;

    public bool StreamTaken { get; set; }

    public bool Finished { get; private set; }

    public void Finish(Fields? trailers)
    {
        Finished = true;
        Stream.Flush();
        Stream.Closed = true;
        finish?.Invoke(trailers);
    }

    public void Dropped()
    {
        if (!Finished)
        {
            Stream.Closed = true;
            abandon?.Invoke();
        }
    }
}

internal sealed class ResponseOutparam;

/// <summary>A request the guest builds for wasi:http/outgoing-handler.</summary>
internal sealed class OutgoingRequest(Fields headers)
{
    public Fields Headers { get; } = headers;

    public string Method { get; set; } = "GET";

    public string? PathWithQuery { get; set; }

    public string? Scheme { get; set; }

    public string? Authority { get; set; }

    public OutgoingBody? Body { get; set; }

    /// <summary>Where the body's bytes go: buffered until handle, then streamed to HttpClient.</summary>
    public RequestBodySink? BodySink { get; set; }
}

/// <summary>wasi:http request-options: timeouts of an outgoing request (null: the host's default).</summary>
internal sealed class RequestOptions
{
    public TimeSpan? ConnectTimeout { get; set; }

    public TimeSpan? FirstByteTimeout { get; set; }

    public TimeSpan? BetweenBytesTimeout { get; set; }
}

/// <summary>A wasi:http future resource, whose value the guest can take once.</summary>
internal interface IHostFuture
{
    /// <summary>Whether <c>get</c> has already handed out the value.</summary>
    bool Taken { get; set; }
}
