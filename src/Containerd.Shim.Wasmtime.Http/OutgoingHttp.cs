using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using static Containerd.Shim.Wasmtime.Http.ComponentApi;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// A wasi:http error-code case. <paramref name="Detail"/> is the payload of the cases that carry text
/// (DNS-error's rcode, internal-error).
/// </summary>
internal sealed record ErrorCode(string Case, string? Detail = null)
{
    public Val ToVal() => Case switch
    {
        "DNS-error" => Variant(Case, Record(
            ("rcode", Option(Detail is null ? null : ComponentApi.String(Detail))),
            ("info-code", Option(null)))),
        "internal-error" => Variant(Case, Option(Detail is null ? null : ComponentApi.String(Detail))),
        "HTTP-request-body-size" or "HTTP-request-header-section-size" or "HTTP-request-header-size"
            or "HTTP-request-trailer-section-size" or "HTTP-response-header-section-size" or "HTTP-response-header-size"
            or "HTTP-response-body-size" or "HTTP-response-trailer-section-size" or "HTTP-response-trailer-size"
            or "HTTP-response-transfer-coding" or "HTTP-response-content-coding" or "HTTP-request-trailer-size"
            or "TLS-alert-received" => throw new InvalidOperationException($"error-code {Case} needs a payload this host does not build"),
        _ => Variant(Case),
    };
}

/// <summary>Carries an error code out of HttpClient's connect callback.</summary>
internal sealed class WasiHttpException(ErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorCode Code { get; } = code;
}

/// <summary>A response HttpClient received for the guest (wasi:http incoming-response).</summary>
internal sealed class IncomingResponse(HttpResponseMessage message, Fields headers, TimeSpan betweenBytes)
{
    public HttpResponseMessage Message { get; } = message;

    public ushort Status => (ushort)Message.StatusCode;

    public Fields Headers { get; } = headers;

    public TimeSpan BetweenBytes { get; } = betweenBytes;

    public bool Consumed { get; set; }
}

/// <summary>An outgoing request in flight (wasi:http future-incoming-response).</summary>
internal sealed class FutureIncomingResponse(Task<IncomingResponse> response, CancellationTokenSource cancel) : IDropped, IHostFuture
{
    public Task<IncomingResponse> Response { get; } = response;

    public bool Taken { get; set; }

    public void Dropped()
    {
        if (!Taken)
        {
            // The guest gave up on the request: stop it, and free the connection of a response that did arrive.
            cancel.Cancel();
            Response.ContinueWith(t => t.Result.Message.Dispose(), TaskContinuationOptions.OnlyOnRanToCompletion);
        }
    }
}

/// <summary>
/// The bytes of an outgoing request's body. Until outgoing-handler.handle they are buffered (a guest may write the
/// whole body first); a body finished by then is sent with a content-length, one still being written streams
/// through a pipe (chunked unless the guest set content-length).
/// </summary>
internal sealed class RequestBodySink : Stream
{
    private MemoryStream? _buffer = new();
    private Pipe? _pipe;

    public bool Finished { get; private set; }

    public HttpContent Start()
    {
        var buffered = _buffer!;
        _buffer = null;
        if (Finished)
        {
            return new ByteArrayContent(buffered.ToArray());
        }
        // Some back-pressure for a guest that writes faster than the peer reads.
        _pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19));
        if (buffered.Length > 0)
        {
            _pipe.Writer.Write(buffered.GetBuffer().AsSpan(0, (int)buffered.Length));
        }
        return new StreamContent(_pipe.Reader.AsStream());
    }

    public void Finish()
    {
        Finished = true;
        _pipe?.Writer.Complete();
    }

    public void Abandon() =>
        _pipe?.Writer.Complete(new IOException("the component dropped the request body before finishing it"));

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> bytes)
    {
        if (_buffer is not null)
        {
            _buffer.Write(bytes);
            return;
        }
        var result = _pipe!.Writer.WriteAsync(bytes.ToArray()).AsTask().GetAwaiter().GetResult();
        if (result.IsCompleted)
        {
            throw new IOException("the peer no longer reads the request body");
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// wasi:http/outgoing-handler over the HttpClient of the request's server (<see cref="OutgoingClient"/>: the
/// process's in normal mode, the container's in shared mode). Timeouts default to Wasmtime's (600 s each).
/// </summary>
internal static class OutgoingHttp
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(600);

    internal static readonly HttpRequestOptionsKey<TimeSpan> ConnectTimeoutKey = new("wasi-http-connect-timeout");

    // Hop-by-hop fields belong to the transport (HttpClient sets its own).
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "http2-settings",
    };

    /// <summary>
    /// Starts the guest's request: an error code now for a request that cannot be sent at all, otherwise a future
    /// that completes with the response head (or faults with <see cref="WasiHttpException"/>).
    /// </summary>
    public static (FutureIncomingResponse? Future, ErrorCode? Error) Send(ProxyRequest owner, OutgoingRequest request, RequestOptions? options)
    {
        var scheme = request.Scheme ?? "https";
        if (scheme is not ("http" or "https"))
        {
            return (null, new ErrorCode("HTTP-protocol-error"));
        }
        if (string.IsNullOrEmpty(request.Authority)
            || !Uri.TryCreate($"{scheme}://{request.Authority}{request.PathWithQuery ?? "/"}", UriKind.Absolute, out var uri))
        {
            return (null, new ErrorCode("HTTP-request-URI-invalid"));
        }
        HttpMethod method;
        try
        {
            method = new HttpMethod(request.Method);
        }
        catch (FormatException)
        {
            return (null, new ErrorCode("HTTP-request-method-invalid"));
        }

        var message = new HttpRequestMessage(method, uri) { Version = HttpVersion.Version11 };
        var content = request.BodySink?.Start();
        message.Content = content;
        foreach (var (name, value) in request.Headers.Entries)
        {
            if (HopByHop.Contains(name))
            {
                continue;
            }
            var text = Encoding.Latin1.GetString(value);
            if (!message.Headers.TryAddWithoutValidation(name, text) && content is not null)
            {
                // Content-Type, Content-Length and the like belong to the content. A guest-set content-length
                // replaces the computed one (and makes a streamed body non-chunked).
                if (name.Equals("content-length", StringComparison.OrdinalIgnoreCase))
                {
                    content.Headers.ContentLength = null;
                }
                content.Headers.Remove(name);
                content.Headers.TryAddWithoutValidation(name, text);
            }
        }
        message.Options.Set(ConnectTimeoutKey, options?.ConnectTimeout ?? DefaultTimeout);
        var firstByte = options?.FirstByteTimeout ?? DefaultTimeout;
        var betweenBytes = options?.BetweenBytesTimeout ?? DefaultTimeout;

        var cancel = new CancellationTokenSource();
        owner.Own(message);
        owner.Own(cancel);
        var response = Task.Run(async () =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel.Token);
            timeout.CancelAfter(firstByte);
            HttpResponseMessage answer;
            try
            {
                answer = await owner.Guest.Outgoing.Client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            }
            catch (OperationCanceledException e) when (!cancel.IsCancellationRequested && e.InnerException is not WasiHttpException)
            {
                throw new WasiHttpException(new ErrorCode("connection-read-timeout"), "no response within the first-byte timeout", e);
            }
            catch (Exception e) when (e is not WasiHttpException)
            {
                throw new WasiHttpException(ErrorOf(e) ?? new ErrorCode("internal-error", e.Message), e.Message, e);
            }
            owner.Own(answer);
            return new IncomingResponse(answer, HeadersOf(answer.Headers, answer.Content.Headers), betweenBytes);
        });
        return (new FutureIncomingResponse(response, cancel), null);
    }

    private static Fields HeadersOf(HttpHeaders headers, HttpHeaders? more = null)
    {
        var entries = new List<KeyValuePair<string, byte[]>>();
        foreach (var set in more is null ? [headers] : new[] { headers, more })
        {
            foreach (var (name, values) in set.NonValidated)
            {
                if (HopByHop.Contains(name))
                {
                    continue;
                }
                foreach (var value in values)
                {
                    entries.Add(new(name.ToLowerInvariant(), Encoding.Latin1.GetBytes(value)));
                }
            }
        }
        return new Fields(entries, immutable: true);
    }

    /// <summary>The trailers of a response whose body has been read to its end.</summary>
    public static Fields? TrailersOf(HttpResponseMessage response) =>
        response.TrailingHeaders.NonValidated.Count == 0 ? null : HeadersOf(response.TrailingHeaders);

    /// <summary>The wasi:http error code for an exception of HttpClient or of a body stream, when one fits.</summary>
    public static ErrorCode? ErrorOf(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is WasiHttpException wasi)
            {
                return wasi.Code;
            }
        }
        if (e is HttpRequestException http)
        {
            return http.HttpRequestError switch
            {
                HttpRequestError.NameResolutionError => new ErrorCode("DNS-error", http.Message),
                HttpRequestError.ConnectionError => SocketErrorOf(e) ?? new ErrorCode("connection-terminated"),
                HttpRequestError.SecureConnectionError => e.InnerException is AuthenticationException { InnerException: null } auth
                    && auth.Message.Contains("certificate", StringComparison.OrdinalIgnoreCase)
                        ? new ErrorCode("TLS-certificate-error")
                        : new ErrorCode("TLS-protocol-error"),
                HttpRequestError.ResponseEnded => new ErrorCode("HTTP-response-incomplete"),
                HttpRequestError.InvalidResponse or HttpRequestError.HttpProtocolError => new ErrorCode("HTTP-protocol-error"),
                _ => new ErrorCode("internal-error", http.Message),
            };
        }
        return SocketErrorOf(e) ?? (e is IOException or HttpIOException ? new ErrorCode("connection-terminated") : null);
    }

    private static ErrorCode? SocketErrorOf(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return ForSocket(socket);
            }
        }
        return null;
    }

    internal static ErrorCode ForSocket(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => new ErrorCode("connection-refused"),
        SocketError.TimedOut => new ErrorCode("connection-timeout"),
        SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown
            => new ErrorCode("destination-unavailable"),
        SocketError.AddressNotAvailable => new ErrorCode("destination-IP-unroutable"),
        _ => new ErrorCode("connection-terminated"),
    };
}
