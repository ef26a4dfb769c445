using Containerd.Api.Client;
using Containerd.Events;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Ttrpc.Tests.Interop;

/// <summary>
/// The .NET ttrpc client against containerd's own ttrpc server (<c>&lt;address&gt;.ttrpc</c>), the way a
/// shim publishes task events; the event is observed coming out of containerd's gRPC Events service.
/// </summary>
[Trait("Category", "Integration")]
public sealed class EventsForwardTests(ContainerdTtrpcFixture containerd) : IClassFixture<ContainerdTtrpcFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task A_forwarded_TaskExit_comes_out_of_containerds_event_stream()
    {
        using var grpc = new ContainerdClient(containerd.Address, containerd.Namespace);
        using var ready = new CancellationTokenSource(Patience);
        await using var subscription = await EventSubscription.StartAsync(grpc, [EventFilters.Topic("/tasks/exit")], ready.Token);
        await using var channel = new TtrpcChannel(containerd.TtrpcAddress, new TtrpcChannelOptions
        {
            DefaultMetadata = new Metadata { { "containerd-namespace-ttrpc", containerd.Namespace } },
        });
        var events = new Events.EventsClient(channel.CreateCallInvoker());
        string id = "ttrpc-" + Guid.NewGuid().ToString("N")[..8];
        var exitedAt = Timestamp.FromDateTime(new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        var exit = new TaskExit { ContainerId = id, Id = id, Pid = 4242, ExitStatus = 7, ExitedAt = exitedAt };

        await events.ForwardAsync(
            new ForwardRequest
            {
                Envelope = new Envelope
                {
                    Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
                    Namespace = containerd.Namespace,
                    Topic = "/tasks/exit",
                    // containerd's typeurl names event types without the type.googleapis.com/ prefix.
                    Event = new Any { TypeUrl = "containerd.events.TaskExit", Value = exit.ToByteString() },
                },
            },
            deadline: DateTime.UtcNow.Add(Patience));

        using var cts = new CancellationTokenSource(Patience);
        Envelope seen = await subscription.WaitForAsync(e => e.TryUnpack(out TaskExit t) && t.ContainerId == id, cts.Token);

        Assert.Equal(containerd.Namespace, seen.Namespace);
        Assert.True(seen.TryUnpack(out TaskExit received));
        Assert.Equal(exit, received);
    }

    [Fact]
    public async Task Concurrent_forwards_over_one_connection_all_arrive()
    {
        using var grpc = new ContainerdClient(containerd.Address, containerd.Namespace);
        using var ready = new CancellationTokenSource(Patience);
        await using var subscription = await EventSubscription.StartAsync(grpc, [EventFilters.Topic("/tasks/start")], ready.Token);
        await using var channel = new TtrpcChannel(containerd.TtrpcAddress);
        var events = new Events.EventsClient(channel.CreateCallInvoker());
        string prefix = "ttrpc-" + Guid.NewGuid().ToString("N")[..8] + "-";

        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => events.ForwardAsync(new ForwardRequest
        {
            Envelope = new Envelope
            {
                Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
                Namespace = containerd.Namespace,
                Topic = "/tasks/start",
                Event = new Any { TypeUrl = "containerd.events.TaskStart", Value = new TaskStart { ContainerId = prefix + i, Pid = (uint)i + 1 }.ToByteString() },
            },
        }).ResponseAsync));

        var seen = new HashSet<string>();
        using var cts = new CancellationTokenSource(Patience);
        await subscription.WaitForAsync(e => e.TryUnpack(out TaskStart t) && t.ContainerId.StartsWith(prefix, StringComparison.Ordinal) && seen.Add(t.ContainerId) && seen.Count == 50, cts.Token);
        Assert.Equal(50, seen.Count);
    }

    [Fact]
    public async Task An_invalid_envelope_is_refused_with_containerds_status_and_the_connection_survives()
    {
        await using var channel = new TtrpcChannel(containerd.TtrpcAddress);
        var events = new Events.EventsClient(channel.CreateCallInvoker());

        // An empty namespace fails containerd's validation.
        var e = await Assert.ThrowsAsync<RpcException>(() => events.ForwardAsync(new ForwardRequest
        {
            Envelope = new Envelope { Topic = "/tasks/exit", Event = new Any { TypeUrl = "containerd.events.TaskExit" } },
        }).ResponseAsync);
        Assert.NotEqual(StatusCode.OK, e.StatusCode);
        Assert.NotEqual(StatusCode.Unavailable, e.StatusCode);

        await events.ForwardAsync(new ForwardRequest
        {
            Envelope = new Envelope
            {
                Timestamp = Timestamp.FromDateTime(DateTime.UtcNow),
                Namespace = containerd.Namespace,
                Topic = "/tasks/oom",
                Event = new Any { TypeUrl = "containerd.events.TaskOOM", Value = new TaskOOM { ContainerId = "x" }.ToByteString() },
            },
        });
    }

    [Fact]
    public async Task An_unknown_method_on_containerds_ttrpc_server_is_Unimplemented()
    {
        await using var channel = new TtrpcChannel(containerd.TtrpcAddress);
        var invoker = channel.CreateCallInvoker();
        var method = new Method<Empty, Empty>(MethodType.Unary, "containerd.services.events.ttrpc.v1.Events", "NoSuchMethod", Marshallers.Create<Empty>(m => m.ToByteArray(), Empty.Parser.ParseFrom), Marshallers.Create<Empty>(m => m.ToByteArray(), Empty.Parser.ParseFrom));

        var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(method, null, default, new Empty()).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }
}
