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
}

/// <summary>The state of one request's store: its resource table and the exchange it answers.</summary>
internal sealed class ProxyRequest(IProxyExchange exchange)
{
    private MemoryStream? _early;
    private readonly List<IDisposable> _owned = [];

    public ResourceTable Table { get; } = new();

    public IProxyExchange Exchange { get; } = exchange;

    /// <summary>The response the guest set through the outparam, once it did.</summary>
    public OutgoingResponse? Response { get; private set; }

    /// <summary>Whether the guest has set the outparam (to a response or an error).</summary>
    public bool OutparamSet { get; private set; }

    /// <summary>The guest's error when it set the outparam to an error-code.</summary>
    public string? ResponseError { get; private set; }

    public bool ResponseStarted { get; private set; }

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
            Exchange.ResponseBody.WriteAsync(bytes.ToArray()).AsTask().GetAwaiter().GetResult();
        }
    }

    public void FlushBody()
    {
        if (ResponseStarted)
        {
            Exchange.ResponseBody.FlushAsync().GetAwaiter().GetResult();
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
            Exchange.ResponseBody.WriteAsync(early.GetBuffer().AsMemory(0, (int)early.Length)).AsTask().GetAwaiter().GetResult();
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
