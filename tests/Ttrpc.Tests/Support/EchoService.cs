using Google.Protobuf;
using Grpc.Core;
using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests;

/// <summary>The test service: echoes, and misbehaves on request.</summary>
internal sealed class EchoService : Echo.Echo.EchoBase
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public override async Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref _calls);
        double deadline = context.Deadline == DateTime.MaxValue ? -1 : (context.Deadline - DateTime.UtcNow).TotalSeconds;
        if (request.DelayMs > 0)
        {
            await Task.Delay(request.DelayMs, context.CancellationToken);
        }

        if (request.FailCode != 0)
        {
            throw new RpcException(new Status((StatusCode)request.FailCode, $"asked to fail with {request.FailCode}"));
        }

        if (request.Crash.Length > 0)
        {
            throw new InvalidOperationException(request.Crash);
        }

        return new EchoResponse
        {
            Text = request.Text,
            MetadataValue = request.MetadataKey.Length > 0 ? context.RequestHeaders.GetValue(request.MetadataKey) ?? "" : "",
            DeadlineSeconds = deadline,
            Padding = request.ResponsePadding > 0 ? ByteString.CopyFrom(new byte[request.ResponsePadding]) : ByteString.Empty,
        };
    }
}
