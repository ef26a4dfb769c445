using Google.Protobuf;

namespace Containerd.Shimkit.Events;

/// <summary>Where the Task service sends task events; <see cref="EventPublisher"/> forwards them to containerd.</summary>
public interface IEventPublisher
{
    /// <summary>Queues <paramref name="evt"/> under <paramref name="topic"/> in namespace <paramref name="ns"/>; never blocks.</summary>
    void Publish(string ns, string topic, IMessage evt);
}
