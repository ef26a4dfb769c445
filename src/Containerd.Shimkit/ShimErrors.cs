using Grpc.Core;

namespace Containerd.Shimkit;

/// <summary>The one place where exceptions become the gRPC status containerd receives.</summary>
public static class ShimErrors
{
    /// <summary>
    /// <see cref="ShimException"/> keeps its code; <see cref="RpcException"/> its status; cancellation is
    /// Cancelled; anything else is an Internal error whose message says what broke (never hidden).
    /// </summary>
    public static Status ToStatus(Exception e) => e switch
    {
        ShimException s => new Status(s.Code, s.Message),
        RpcException r => r.Status,
        OperationCanceledException => new Status(StatusCode.Cancelled, e.Message),
        NotImplementedException => new Status(StatusCode.Unimplemented, e.Message),
        _ => new Status(StatusCode.Internal, $"{e.GetType().Name}: {e.Message}"),
    };
}
