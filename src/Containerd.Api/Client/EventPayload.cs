using Containerd.Types;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace Containerd.Api.Client;

/// <summary>
/// Decodes the <see cref="Any"/> payload of an event <see cref="Envelope"/>.
/// </summary>
/// <remarks>
/// containerd's type URLs for its own events are bare message names
/// (<c>containerd.events.TaskExit</c>), which <see cref="Any.Unpack{T}"/> does not
/// accept, so the name is matched here against the message's full name.
/// </remarks>
public static class EventPayload
{
    /// <summary>The containerd event messages this library knows (task lifecycle events).</summary>
    public static TypeRegistry Registry { get; } = TypeRegistry.FromFiles(Containerd.Events.TaskReflection.Descriptor);

    /// <summary>The full protobuf message name an Any's type URL refers to.</summary>
    public static string TypeName(Any payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var url = payload.TypeUrl;
        return url[(url.LastIndexOf('/') + 1)..];
    }

    /// <summary>Decodes the payload as <typeparamref name="T"/> when that is its type.</summary>
    public static bool TryUnpack<T>(this Envelope envelope, out T message)
        where T : IMessage<T>, new()
    {
        ArgumentNullException.ThrowIfNull(envelope);
        message = new T();
        if (envelope.Event is null || TypeName(envelope.Event) != message.Descriptor.FullName)
        {
            return false;
        }

        message.MergeFrom(envelope.Event.Value);
        return true;
    }

    /// <summary>Decodes the payload as whatever known message it is, or returns <c>null</c> for unknown types.</summary>
    public static IMessage? Decode(this Envelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (envelope.Event is null)
        {
            return null;
        }

        var descriptor = Registry.Find(TypeName(envelope.Event));
        return descriptor?.Parser.ParseFrom(envelope.Event.Value);
    }
}
