using Containerd.Shim.Wasm;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>What the host needs from the HTTP server for one request; Kestrel's adapter lives in ProxyServer.</summary>
internal interface IProxyExchange
{
    string Method { get; }

    string PathWithQuery { get; }

    string Scheme { get; }

    string? Authority { get; }

    IEnumerable<KeyValuePair<string, byte[]>> RequestHeaders { get; }

    Stream RequestBody { get; }

    /// <summary>The request's trailers, read after its body ended; null when it had none.</summary>
    IEnumerable<KeyValuePair<string, byte[]>>? RequestTrailers();

    /// <summary>Sends trailers after the response body, when the transport can; false when it cannot.</summary>
    bool SetResponseTrailers(IReadOnlyList<KeyValuePair<string, byte[]>> trailers);

    /// <summary>Sets the status and headers; called once, on the guest's thread, before any body byte.</summary>
    void StartResponse(int status, IReadOnlyList<KeyValuePair<string, byte[]>> headers);

    Stream ResponseBody { get; }

    /// <summary>Cancelled when the client went away or the server aborted the request (a stop past its drain
    /// deadline): body writes fail from then on, and a guest still running traps at its next epoch tick.</summary>
    CancellationToken Aborted { get; }
}

/// <summary>
/// What the guests of one server share: where their stdout and stderr go (the process's own in normal mode, the
/// container's FIFOs in the shared-mode daemon) and whether they must stop (a kill in shared mode, where the
/// process outlives the container), and the connection pool their outgoing requests use.
/// </summary>
internal sealed class ProxyGuestContext(Stream stdout, Stream stderr, OutgoingClient outgoing)
{
    /// <summary>The instance process's own stdio and network: normal mode, where a kill ends the process.</summary>
    public static ProxyGuestContext Process { get; } =
        new(Console.OpenStandardOutput(), Console.OpenStandardError(), OutgoingClient.Process);

    private readonly CancellationTokenSource _killed = new();

    private ProxyStoreLimits? _storeLimits;

    /// <summary>Limits of every request's store (shared mode); null where the process's cgroup is the bound. An
    /// Update replaces them for the requests that start after it.</summary>
    public ProxyStoreLimits? StoreLimits
    {
        get => Volatile.Read(ref _storeLimits);
        set => Volatile.Write(ref _storeLimits, value);
    }

    /// <summary>The container's CPU quota, which the threads of all its requests share (shared mode); null where
    /// the process's cgroup is the bound.</summary>
    public CpuQuota? Cpu { get; init; }

    /// <summary>The daemon's cap on guest threads, one taken per request while its guest runs (shared mode).</summary>
    public DaemonLimit? Threads { get; init; }

    /// <summary>The daemon's cap on open connections, one taken per connection of the server (shared mode).</summary>
    public DaemonLimit? Connections { get; init; }

    public Stream Stdout { get; } = stdout;

    public Stream Stderr { get; } = stderr;

    /// <summary>Where the guests' outgoing requests go out (wasi:http/outgoing-handler).</summary>
    public OutgoingClient Outgoing { get; } = outgoing;

    /// <summary>Set by a kill: every guest of the server traps at its next epoch deadline.</summary>
    public bool Killed => _killed.IsCancellationRequested;

    /// <summary>Cancelled by a kill: wakes guests blocked in the host's own pollables.</summary>
    public CancellationToken KillToken => _killed.Token;

    public void Kill()
    {
        try
        {
            _killed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>A line for the container's stderr (a guest's failure); lost if the stream is gone.</summary>
    public void Report(string line)
    {
        try
        {
            Stderr.Write(System.Text.Encoding.UTF8.GetBytes(line + "\n"));
            Stderr.Flush();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }
}

/// <summary>The state of one request's store: its resource table and the exchange it answers.</summary>
internal sealed class ProxyRequest(IProxyExchange exchange, ProxyGuestContext guest)
{
    private MemoryStream? _early;
    private readonly List<IDisposable> _owned = [];
    private CancellationTokenSource? _stop;

    // The CPU time of the thread the request is made on (its guest's) when it last charged the container's quota.
    private long _cpuMark = guest.Cpu is null ? 0 : ThreadCpuTime.Nanos();

    public ResourceTable Table { get; } = new();

    public IProxyExchange Exchange { get; } = exchange;

    public ProxyGuestContext Guest { get; } = guest;

    /// <summary>The response the guest set through the outparam, once it did.</summary>
    public OutgoingResponse? Response { get; private set; }

    /// <summary>Whether the guest has set the outparam (to a response or an error).</summary>
    public bool OutparamSet { get; private set; }

    /// <summary>The guest's error when it set the outparam to an error-code.</summary>
    public string? ResponseError { get; private set; }

    public bool ResponseStarted { get; private set; }

    /// <summary>Cancelled when the container is killed or the request aborted: a guest blocked in a pollable wakes and
    /// traps. Made on the first block (on the guest's thread), so requests that never wait pay nothing.</summary>
    public CancellationToken StopToken
    {
        get
        {
            _stop ??= CancellationTokenSource.CreateLinkedTokenSource(Guest.KillToken, Exchange.Aborted);
            return _stop.Token;
        }
    }

    /// <summary>
    /// Charges the CPU time the request's thread used since its last charge to the container's quota (on that
    /// thread: each epoch deadline, and the request's end) and, when <paramref name="mayPause"/>, pauses as long as
    /// the quota asks; a kill or an abort ends the pause, and the epoch check after it traps the guest.
    /// </summary>
    public void ChargeCpu(bool mayPause)
    {
        if (Guest.Cpu is not { } quota)
        {
            return;
        }
        var now = ThreadCpuTime.Nanos();
        var pauseNs = quota.Charge(now - _cpuMark);
        _cpuMark = now;
        if (pauseNs > 0 && mayPause)
        {
            StopToken.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(Math.Min((pauseNs + 999_999) / 1_000_000, int.MaxValue)));
        }
    }

    /// <summary>Disposes <paramref name="item"/> when the request ends (outgoing requests and their responses).</summary>
    public void Own(IDisposable item)
    {
        lock (_owned)
        {
            _owned.Add(item);
        }
    }

    /// <summary>Ends what the guest's outgoing requests left open.</summary>
    public void DisposeOwned()
    {
        _stop?.Dispose();
        _stop = null;
        IDisposable[] items;
        lock (_owned)
        {
            items = [.. _owned];
            _owned.Clear();
        }
        foreach (var item in items)
        {
            item.Dispose();
        }
    }

    public void SetResponse(OutgoingResponse response)
    {
        OutparamSet = true;
        Response = response;
        StartResponse();
    }

    /// <summary>The guest finished the response body with these trailers (outgoing-body.finish).</summary>
    public void SetTrailers(Fields? trailers)
    {
        if (trailers is { Entries.Count: > 0 })
        {
            StartResponse();
            if (ResponseStarted)
            {
                // A transport that cannot send them drops them: the body itself is complete either way.
                Exchange.SetResponseTrailers(trailers.Entries);
            }
        }
    }

    public void SetError(string error)
    {
        OutparamSet = true;
        ResponseError = error;
    }

    /// <summary>A body write; bytes written before the outparam is set wait for it (the status comes first).</summary>
    public void WriteBody(ReadOnlySpan<byte> bytes)
    {
        if (!ResponseStarted)
        {
            (_early ??= new MemoryStream()).Write(bytes);
            return;
        }
        if (bytes.Length > 0)
        {
            Send(Exchange.ResponseBody.WriteAsync(bytes.ToArray(), Exchange.Aborted).AsTask());
        }
    }

    public void FlushBody()
    {
        if (ResponseStarted)
        {
            Send(Exchange.ResponseBody.FlushAsync(Exchange.Aborted));
        }
    }

    /// <summary>
    /// Waits for a write or flush. Kestrel completes writes to a connection that is gone without an error, so a
    /// guest writing an endless body would never learn of it: an aborted request fails the write instead (the
    /// guest's output-stream reports last-operation-failed), also one that waits on a client not reading.
    /// </summary>
    private void Send(Task write)
    {
        if (Exchange.Aborted.IsCancellationRequested)
        {
            throw new IOException("the client went away");
        }
        try
        {
            write.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException e)
        {
            throw new IOException("the client went away", e);
        }
    }

    private void StartResponse()
    {
        if (ResponseStarted || Response is null)
        {
            return;
        }
        ResponseStarted = true;
        Exchange.StartResponse(Response.Status, Response.Headers.Entries);
        if (_early is { Length: > 0 } early)
        {
            _early = null;
            Send(Exchange.ResponseBody.WriteAsync(early.GetBuffer().AsMemory(0, (int)early.Length), Exchange.Aborted).AsTask());
        }
    }
}

/// <summary>The sink of a response body's output-stream.</summary>
internal sealed class ResponseBodyStream(ProxyRequest request) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => request.FlushBody();

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        request.FlushBody();
        return Task.CompletedTask;
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => request.WriteBody(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        request.WriteBody(buffer.Span);
        return ValueTask.CompletedTask;
    }
}
