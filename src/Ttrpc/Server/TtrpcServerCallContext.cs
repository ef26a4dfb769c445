using Grpc.Core;

namespace Ttrpc;

/// <summary>
/// What a handler sees of one ttrpc call: the request metadata (containerd sends the
/// namespace as <c>containerd-namespace-ttrpc</c>), the deadline from <c>timeout_nano</c>, and a
/// token cancelled when the deadline passes or the connection closes.
/// </summary>
public sealed class TtrpcServerCallContext : ServerCallContext, IDisposable
{
    private readonly string _method;
    private readonly string _peer;
    private readonly Metadata _requestHeaders;
    private readonly DateTime _deadline;
    private readonly CancellationTokenSource? _timeout;
    private readonly CancellationToken _token;
    private readonly CancellationToken _connectionClosed;
    private Metadata? _trailers;
    private Status _status;

    internal TtrpcServerCallContext(string method, string peer, Metadata requestHeaders, long timeoutNano, CancellationToken connectionClosed)
    {
        _method = method;
        _peer = peer;
        _requestHeaders = requestHeaders;
        _connectionClosed = connectionClosed;
        if (timeoutNano > 0)
        {
            var timeout = TimeSpan.FromTicks(Math.Max(1, timeoutNano / 100));
            _deadline = DateTime.UtcNow + timeout;
            _timeout = CancellationTokenSource.CreateLinkedTokenSource(connectionClosed);
            _timeout.CancelAfter(timeout);
            _token = _timeout.Token;
        }
        else
        {
            _deadline = DateTime.MaxValue;
            _token = connectionClosed;
        }
    }

    /// <summary>True when the call's deadline has passed.</summary>
    public bool IsDeadlineExceeded =>
        _deadline != DateTime.MaxValue
        && (DateTime.UtcNow >= _deadline || (_token.IsCancellationRequested && !_connectionClosed.IsCancellationRequested));

    /// <inheritdoc />
    protected override string MethodCore => _method;

    /// <inheritdoc />
    protected override string HostCore => string.Empty;

    /// <inheritdoc />
    protected override string PeerCore => _peer;

    /// <inheritdoc />
    protected override DateTime DeadlineCore => _deadline;

    /// <inheritdoc />
    protected override Metadata RequestHeadersCore => _requestHeaders;

    /// <inheritdoc />
    protected override CancellationToken CancellationTokenCore => _token;

    /// <inheritdoc />
    protected override Metadata ResponseTrailersCore => _trailers ??= [];

    /// <inheritdoc />
    protected override Status StatusCore
    {
        get => _status;
        set => _status = value;
    }

    /// <inheritdoc />
    protected override WriteOptions? WriteOptionsCore { get; set; }

    /// <inheritdoc />
    protected override AuthContext AuthContextCore => new(null, []);

    /// <inheritdoc />
    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("ttrpc has no context propagation");

    /// <inheritdoc />
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) =>
        throw new NotSupportedException("ttrpc has no response headers");

    /// <inheritdoc />
    public void Dispose() => _timeout?.Dispose();
}
