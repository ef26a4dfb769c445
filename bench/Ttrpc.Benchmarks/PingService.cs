using Grpc.Core;
using Ttrpc.Benchmarks.Ping;

namespace Ttrpc.Benchmarks;

/// <summary>Answers immediately, so the benchmark measures ttrpc and not the handler.</summary>
public sealed class PingService : Pinger.PingerBase
{
    /// <inheritdoc />
    public override Task<PingResponse> Ping(PingRequest request, ServerCallContext context) =>
        Task.FromResult(new PingResponse { Sequence = request.Sequence });
}
