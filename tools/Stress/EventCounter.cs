using Containerd.Services.Events.Ttrpc.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Stress;

/// <summary>
/// Stands in for containerd's ttrpc Events/Forward endpoint in shim mode: accepts and counts every event a shim
/// publishes, so the shim never waits on (or retries against) a missing containerd.
/// </summary>
public sealed class EventCounter : Events.EventsBase
{
    private int _count;

    /// <summary>Events received so far.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <inheritdoc />
    public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref _count);
        return System.Threading.Tasks.Task.FromResult(new Empty());
    }
}
