using Grpc.Core;
using RpcStatus = Google.Rpc.Status;

namespace Ttrpc;

/// <summary>The one place where exceptions become gRPC status codes and back.</summary>
internal static class StatusMapping
{
    public static readonly RpcStatus Ok = new();

    public static RpcStatus ToRpcStatus(StatusCode code, string message) => new() { Code = (int)code, Message = message };

    /// <summary>
    /// Maps a handler's exception: a custom mapper gets the first say, an RpcException keeps its
    /// status, anything else is Unknown carrying the exception message.
    /// </summary>
    public static RpcStatus FromException(Exception e, Func<Exception, Status?>? mapper)
    {
        if (mapper?.Invoke(e) is Status mapped)
        {
            return ToRpcStatus(mapped.StatusCode, mapped.Detail);
        }

        return e switch
        {
            RpcException rpc => ToRpcStatus(rpc.StatusCode, rpc.Status.Detail),
            MessageTooLargeException => ToRpcStatus(StatusCode.ResourceExhausted, e.Message),
            NotImplementedException or NotSupportedException => ToRpcStatus(StatusCode.Unimplemented, e.Message),
            _ => ToRpcStatus(StatusCode.Unknown, e.Message),
        };
    }

    public static RpcException ToException(RpcStatus status) =>
        new(new Status((StatusCode)status.Code, status.Message));
}
