using System.Runtime.CompilerServices;
using Containerd.Services.Events.V1;
using Containerd.Types;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Api.Client;

/// <summary>
/// A live subscription to containerd's event exchange. When <see cref="StartAsync"/>
/// returns, containerd is already delivering events to it, so anything the caller
/// does afterwards is observed: no race between subscribing and acting.
/// </summary>
/// <remarks>
/// containerd sends no response headers until the first event, so there is no
/// acknowledgement of a subscription. <see cref="StartAsync"/> makes one: it publishes
/// a marker event on a topic unique to this subscription and waits until the marker
/// comes back on the stream. The marker is never yielded to the caller.
/// </remarks>
public sealed class EventSubscription : IAsyncEnumerable<Envelope>, IAsyncDisposable
{
    private const string MarkerTopicPrefix = "/dotnet-subscription-ready/";

    private readonly AsyncServerStreamingCall<Envelope> _call;
    private readonly CancellationTokenSource _lifetime;
    private int _enumerated;

    private EventSubscription(AsyncServerStreamingCall<Envelope> call, CancellationTokenSource lifetime)
    {
        _call = call;
        _lifetime = lifetime;
    }

    /// <summary>
    /// Subscribes to events matching any of <paramref name="filters"/> (all events when none)
    /// and waits until the subscription is in place.
    /// </summary>
    /// <param name="client">The client; its namespace is where the readiness marker is published.</param>
    /// <param name="filters">containerd filter expressions, see <see cref="EventFilters"/>.</param>
    /// <param name="cancellationToken">Cancels the wait for readiness only.</param>
    public static async Task<EventSubscription> StartAsync(
        ContainerdClient client,
        IEnumerable<string>? filters = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var markerTopic = MarkerTopicPrefix + Guid.NewGuid().ToString("N");
        var request = new SubscribeRequest();
        if (filters is not null)
        {
            request.Filters.Add(filters);
        }

        // With no filters every event arrives anyway; with filters the marker needs its own.
        if (request.Filters.Count > 0)
        {
            request.Filters.Add(EventFilters.Topic(markerTopic));
        }

        var lifetime = new CancellationTokenSource();
        var call = client.Events.Subscribe(request, cancellationToken: lifetime.Token);
        var subscription = new EventSubscription(call, lifetime);
        try
        {
            await subscription.WaitForMarkerAsync(client, markerTopic, cancellationToken).ConfigureAwait(false);
            return subscription;
        }
        catch
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Reads events until one matches <paramref name="predicate"/> and returns it.
    /// </summary>
    /// <exception cref="OperationCanceledException">When <paramref name="cancellationToken"/> fires first.</exception>
    /// <exception cref="EndOfStreamException">When containerd ends the stream first.</exception>
    public async Task<Envelope> WaitForAsync(Func<Envelope, bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        await foreach (var envelope in ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (predicate(envelope))
            {
                return envelope;
            }
        }

        throw new EndOfStreamException("containerd closed the event stream");
    }

    /// <summary>The events, in the order containerd delivered them. Enumerate once.</summary>
    public IAsyncEnumerator<Envelope> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _enumerated, 1) != 0)
        {
            throw new InvalidOperationException("An event subscription can be enumerated only once; use WaitForAsync to read it in steps.");
        }

        return ReadAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
    }

    /// <summary>Ends the subscription.</summary>
    public ValueTask DisposeAsync()
    {
        _lifetime.Cancel();
        _call.Dispose();
        _lifetime.Dispose();
        return ValueTask.CompletedTask;
    }

    private async IAsyncEnumerable<Envelope> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (await _call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var envelope = _call.ResponseStream.Current;
            if (!envelope.Topic.StartsWith(MarkerTopicPrefix, StringComparison.Ordinal))
            {
                yield return envelope;
            }
        }
    }

    private async Task WaitForMarkerAsync(ContainerdClient client, string markerTopic, CancellationToken cancellationToken)
    {
        var publish = new PublishRequest { Topic = markerTopic, Event = Any.Pack(new Empty()) };

        // The subscribe request may not have reached containerd when the first marker is
        // published, so keep publishing until one arrives. Events before the marker are
        // dropped: the caller has not acted yet, so they cannot be the caller's.
        var next = _call.ResponseStream.MoveNext(cancellationToken);
        while (true)
        {
            await client.Events.PublishAsync(publish, cancellationToken: cancellationToken).ConfigureAwait(false);
            var winner = await Task.WhenAny(next, Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken)).ConfigureAwait(false);
            if (winner != next)
            {
                cancellationToken.ThrowIfCancellationRequested();
                continue;
            }

            if (!await next.ConfigureAwait(false))
            {
                throw new EndOfStreamException("containerd closed the event stream before the subscription was ready");
            }

            if (_call.ResponseStream.Current.Topic == markerTopic)
            {
                return;
            }

            next = _call.ResponseStream.MoveNext(cancellationToken);
        }
    }
}
