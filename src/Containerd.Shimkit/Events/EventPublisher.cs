using System.Threading.Channels;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Ttrpc;

namespace Containerd.Shimkit.Events;

/// <summary>
/// Forwards task events to containerd (<c>Events/Forward</c> on its ttrpc socket) in the order they were
/// published. <see cref="Publish"/> only enqueues, so the Task service never waits on containerd; a single loop
/// sends one event at a time and retries it with backoff before moving to the next.
/// </summary>
public sealed class EventPublisher : IEventPublisher, IAsyncDisposable
{
    private readonly Channel<Envelope> _queue = Channel.CreateUnbounded<Envelope>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _socketPath;
    private readonly EventPublisherOptions _options;
    private readonly Task _loop;
    private readonly CancellationTokenSource _abandon = new();
    private TtrpcChannel? _channel;
    private long _published;
    private long _sent;

    /// <summary>Creates a publisher sending to containerd's ttrpc address (a path, or <c>unix://</c> path).</summary>
    public EventPublisher(string ttrpcAddress, EventPublisherOptions? options = null)
    {
        _socketPath = SocketAddress.ToPath(ttrpcAddress);
        _options = options ?? new EventPublisherOptions();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Number of events handed to containerd (or given up on) so far.</summary>
    public long Processed => Interlocked.Read(ref _sent);

    /// <summary>Queues <paramref name="evt"/> for <paramref name="topic"/> (e.g. <c>/tasks/exit</c>) in
    /// namespace <paramref name="ns"/>. Never blocks.</summary>
    public void Publish(string ns, string topic, IMessage evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        var envelope = new Envelope
        {
            Timestamp = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
            Namespace = ns,
            Topic = topic,
            Event = Pack(evt),
        };
        Interlocked.Increment(ref _published);
        if (!_queue.Writer.TryWrite(envelope))
        {
            Interlocked.Increment(ref _sent);
            ShimLog.Warn($"event {topic} dropped: the publisher is closed");
        }
    }

    /// <summary>
    /// Wraps an event the way containerd's typeurl does: the type URL is the bare full message name
    /// (<c>containerd.events.TaskExit</c>), which every containerd version resolves.
    /// </summary>
    public static Any Pack(IMessage evt) => new() { TypeUrl = evt.Descriptor.FullName, Value = evt.ToByteString() };

    /// <summary>Waits until every event published so far has been sent (or given up), or <paramref name="timeout"/>.</summary>
    public async Task<bool> FlushAsync(TimeSpan timeout)
    {
        var target = Interlocked.Read(ref _published);
        var deadline = DateTime.UtcNow + timeout;
        while (Interlocked.Read(ref _sent) < target)
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }
            await Task.Delay(10).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>Flushes (up to <see cref="EventPublisherOptions.FlushTimeout"/>), then stops the loop.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (!await FlushAsync(_options.FlushTimeout).ConfigureAwait(false))
        {
            ShimLog.Warn("exiting with task events containerd has not received");
        }
        _abandon.Cancel();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        if (_channel is not null)
        {
            await _channel.DisposeAsync().ConfigureAwait(false);
        }
        _abandon.Dispose();
    }

    private async Task LoopAsync()
    {
        await foreach (var envelope in _queue.Reader.ReadAllAsync(_abandon.Token).ConfigureAwait(false))
        {
            await SendAsync(envelope).ConfigureAwait(false);
            Interlocked.Increment(ref _sent);
        }
    }

    private async Task SendAsync(Envelope envelope)
    {
        var delay = _options.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                _channel ??= new TtrpcChannel(_socketPath);
                var client = new Services.Events.Ttrpc.V1.Events.EventsClient(_channel.CreateCallInvoker());
                var headers = new Metadata { { "containerd-namespace-ttrpc", envelope.Namespace } };
                await client.ForwardAsync(new ForwardRequest { Envelope = envelope }, headers,
                    deadline: DateTime.UtcNow + _options.CallTimeout, cancellationToken: _abandon.Token).ConfigureAwait(false);
                ShimLog.Debug($"event {envelope.Topic} forwarded");
                return;
            }
            catch (OperationCanceledException) when (_abandon.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                // A broken connection is not reused: the next attempt dials containerd afresh.
                if (_channel is not null)
                {
                    await _channel.DisposeAsync().ConfigureAwait(false);
                    _channel = null;
                }
                if (attempt >= _options.MaxAttempts)
                {
                    ShimLog.Error($"giving up on event {envelope.Topic} after {attempt} attempts", e);
                    return;
                }
                ShimLog.Debug($"event {envelope.Topic} attempt {attempt} failed: {e.Message}");
                await Task.Delay(delay, _abandon.Token).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxBackoff.Ticks));
            }
        }
    }
}
