using Containerd.Events;
using Containerd.Services.Events.Ttrpc.V1;
using Containerd.Shimkit.Events;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Ttrpc;
using Xunit;
using Task = System.Threading.Tasks.Task;

namespace Shim.Tests;

public class KitEventPublisherTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>containerd's side of Events/Forward: records envelopes, optionally failing the first calls.</summary>
    private sealed class RecordingEvents : Events.EventsBase
    {
        public List<ForwardRequest> Received { get; } = [];
        public List<string?> Namespaces { get; } = [];
        public int FailFirst { get; set; }
        public int Calls;

        public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
        {
            if (Interlocked.Increment(ref Calls) <= FailFirst)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "not yet"));
            }
            lock (Received)
            {
                Received.Add(request);
                Namespaces.Add(context.RequestHeaders.GetValue("containerd-namespace-ttrpc"));
            }
            return Task.FromResult(new Empty());
        }
    }

    private static string SocketPath() => Path.Combine(Path.GetTempPath(), $"kit-ev-{Guid.NewGuid():N}.sock");

    private static async Task<TtrpcServer> Serve(string path, RecordingEvents impl)
    {
        var server = new TtrpcServer();
        Events.BindService(server.Binder, impl);
        server.Listen(path);
        await server.StartAsync();
        return server;
    }

    [Fact]
    public async Task Events_arrive_in_order_as_containerd_decodes_them()
    {
        var path = SocketPath();
        var impl = new RecordingEvents { FailFirst = 3 };
        await using var server = await Serve(path, impl);
        await using (var publisher = new EventPublisher("unix://" + path, new EventPublisherOptions { InitialBackoff = TimeSpan.FromMilliseconds(5) }))
        {
            for (var i = 0; i < 20; i++)
            {
                publisher.Publish("ns1", TaskTopics.Exit, new TaskExit { ContainerId = $"c{i}", ExitStatus = (uint)i });
            }
            Assert.True(await publisher.FlushAsync(Timeout));
        }
        Assert.Equal(20, impl.Received.Count);
        for (var i = 0; i < 20; i++)
        {
            var envelope = impl.Received[i].Envelope;
            Assert.Equal("ns1", envelope.Namespace);
            Assert.Equal("/tasks/exit", envelope.Topic);
            // containerd's typeurl resolves the bare full name on every version.
            Assert.Equal("containerd.events.TaskExit", envelope.Event.TypeUrl);
            Assert.Equal($"c{i}", TaskExit.Parser.ParseFrom(envelope.Event.Value).ContainerId);
            Assert.NotNull(envelope.Timestamp);
        }
        Assert.All(impl.Namespaces, ns => Assert.Equal("ns1", ns));
    }

    [Fact]
    public async Task Events_published_before_containerd_listens_are_delivered_once_it_does()
    {
        var path = SocketPath();
        var impl = new RecordingEvents();
        await using var publisher = new EventPublisher(path, new EventPublisherOptions { InitialBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(100), MaxAttempts = 100 });
        publisher.Publish("ns", TaskTopics.Create, new TaskCreate { ContainerId = "a" });
        publisher.Publish("ns", TaskTopics.Start, new TaskStart { ContainerId = "a" });
        await Task.Delay(300);
        Assert.Equal(0, publisher.Processed);
        await using var server = await Serve(path, impl);
        Assert.True(await publisher.FlushAsync(Timeout));
        Assert.Equal(["/tasks/create", "/tasks/start"], impl.Received.Select(r => r.Envelope.Topic));
    }

    [Fact]
    public async Task Publish_never_blocks_and_gives_up_after_max_attempts()
    {
        var path = SocketPath();
        await using var publisher = new EventPublisher(path, new EventPublisherOptions { InitialBackoff = TimeSpan.FromMilliseconds(1), MaxAttempts = 2, CallTimeout = TimeSpan.FromSeconds(1) });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 100; i++)
        {
            publisher.Publish("ns", TaskTopics.Exit, new TaskExit { ContainerId = "x" });
        }
        Assert.True(sw.ElapsedMilliseconds < 1000);
        Assert.True(await publisher.FlushAsync(Timeout));
        Assert.Equal(100, publisher.Processed);
    }
}
