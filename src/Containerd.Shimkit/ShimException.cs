using Grpc.Core;

namespace Containerd.Shimkit;

/// <summary>
/// An error the shim reports to containerd with a specific gRPC status code. The Task service turns it into the
/// ttrpc status in one place; any other exception is reported as <c>Internal</c>.
/// </summary>
public class ShimException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="code">The gRPC status code containerd receives.</param>
    /// <param name="message">What failed and why, naming the thing (path, id) involved.</param>
    /// <param name="inner">The underlying cause, if any.</param>
    public ShimException(StatusCode code, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
    }

    /// <summary>The gRPC status code containerd receives.</summary>
    public StatusCode Code { get; }
}
