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

/// <summary>Maps reps to host objects for one request's store.</summary>
internal sealed class ResourceTable
{
    private readonly Dictionary<uint, object> _items = [];
    private uint _next = 1;

    public uint Add(object item)
    {
        var rep = _next++;
        _items[rep] = item;
        return rep;
    }

    public T Get<T>(uint rep) where T : class =>
        _items.TryGetValue(rep, out var item) && item is T typed
            ? typed
            : throw new InvalidOperationException($"resource {rep} is not a live {typeof(T).Name}");

    public object? Remove(uint rep) => _items.Remove(rep, out var item) ? item : null;
}

/// <summary>A pollable: ready now, or at a monotonic deadline (clock subscriptions).</summary>
internal sealed class Pollable(long deadlineTicks)
{
    /// <summary>Stopwatch ticks at which it becomes ready; 0 means always ready.</summary>
    public long DeadlineTicks { get; } = deadlineTicks;

    public bool Ready => DeadlineTicks == 0 || Stopwatch.GetTimestamp() >= DeadlineTicks;

    public void Block()
    {
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), DeadlineTicks);
        if (DeadlineTicks != 0 && wait > TimeSpan.Zero)
        {
            Thread.Sleep(wait);
        }
    }
}

internal sealed class IoError(string message)
{
    public string Message { get; } = message;
}

/// <summary>
/// A guest-readable byte stream over a .NET stream. Reads block until at least one byte or the end arrives: the
/// guest runs on its own thread, so blocking there costs no other request anything, and a guest that polls first
/// finds every stream ready.
/// </summary>
internal sealed class InputStream(Stream? source)
{
    private readonly Stream? _source = source;
    private bool _closed = source is null;

    /// <summary>Up to <paramref name="max"/> bytes, or null at the end of the stream.</summary>
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
        var n = _source!.ReadAsync(buffer).AsTask().GetAwaiter().GetResult();
        if (n == 0)
        {
            _closed = true;
            return null;
        }
        return n == buffer.Length ? buffer : buffer[..n];
    }
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

    public bool Consumed { get; set; }
}

internal sealed class IncomingBody(Stream body)
{
    public Stream Body { get; } = body;

    public bool StreamTaken { get; set; }
}

internal sealed class FutureTrailers;

/// <summary>The response the guest builds; the host sends it once the guest sets the outparam.</summary>
internal sealed class OutgoingResponse(Fields headers)
{
    public ushort Status { get; set; } = 200;

    public Fields Headers { get; } = headers;

    public bool BodyTaken { get; set; }
}

internal sealed class OutgoingBody(OutputStream stream)
{
    public OutputStream Stream { get; } = stream;

    public bool StreamTaken { get; set; }
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
}

internal sealed class RequestOptions;
