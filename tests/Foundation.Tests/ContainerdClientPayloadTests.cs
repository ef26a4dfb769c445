using Containerd.Api.Client;
using Containerd.Events;
using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;

namespace Foundation.Tests;

/// <summary>
/// The client's pure helpers: event payload decoding with containerd's bare type URLs,
/// filter expressions and runtime-spec Any wrapping.
/// </summary>
public sealed class ContainerdClientPayloadTests
{
    // containerd publishes its own events with the message name as the whole type URL.
    private static Envelope EnvelopeOf(IMessage message, string typeUrl) => new()
    {
        Topic = "/tasks/exit",
        Namespace = "default",
        Event = new Any { TypeUrl = typeUrl, Value = message.ToByteString() },
    };

    [Theory]
    [InlineData("containerd.events.TaskExit")]
    [InlineData("type.googleapis.com/containerd.events.TaskExit")]
    public void Task_exit_decodes_from_either_type_url_form(string typeUrl)
    {
        var envelope = EnvelopeOf(new TaskExit { ContainerId = "c1", Id = "c1", Pid = 42, ExitStatus = 3 }, typeUrl);

        var decoded = Assert.IsType<TaskExit>(envelope.Decode());
        Assert.Equal(3u, decoded.ExitStatus);
        Assert.True(envelope.TryUnpack<TaskExit>(out var exit));
        Assert.Equal(42u, exit.Pid);
        Assert.False(envelope.TryUnpack<TaskStart>(out _));
    }

    [Fact]
    public void Unknown_payloads_decode_to_null()
    {
        var envelope = EnvelopeOf(new Empty(), "example.com/Whatever");

        Assert.Null(envelope.Decode());
        Assert.Null(new Envelope { Topic = "/x" }.Decode());
    }

    [Fact]
    public void Filters_quote_topics_and_join_conjuncts_with_commas()
    {
        Assert.Equal("topic==\"/tasks/exit\"", EventFilters.Topic("/tasks/exit"));
        Assert.Equal("namespace==\"k8s.io\",topic~=\"^/tasks/\"", EventFilters.All(EventFilters.Namespace("k8s.io"), EventFilters.TopicPrefix("/tasks/")));
        Assert.Equal("topic==\"/a\\\"b\"", EventFilters.Topic("/a\"b"));
    }

    [Fact]
    public void Runtime_spec_documents_use_containerds_type_urls_with_json_values()
    {
        var resources = RuntimeSpecAny.LinuxResources("""{"pids":{"limit":7}}""");

        Assert.Equal("types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", resources.TypeUrl);
        Assert.Equal("""{"pids":{"limit":7}}""", resources.Value.ToStringUtf8());
        Assert.Equal("types.containerd.io/opencontainers/runtime-spec/1/Spec", RuntimeSpecAny.Spec("{}").TypeUrl);
    }

    [Fact]
    public void Descriptor_keeps_containerds_field_numbers()
    {
        // media_type=1, digest=2, size=3, annotations=5: the wire form containerd's Go types read.
        var bytes = new ContentDescriptor { MediaType = "m", Digest = "d", Size = 1, Annotations = { ["k"] = "v" } }.ToByteArray();

        Assert.Equal(new byte[] { 0x0a, 1, (byte)'m', 0x12, 1, (byte)'d', 0x18, 1, 0x2a, 6, 0x0a, 1, (byte)'k', 0x12, 1, (byte)'v' }, bytes);
    }
}
