using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A container's entrypoint cannot run. The message names the entrypoint path and the reason, and is what
/// containerd (and so <c>ctr</c>) shows for the failed Create.
/// </summary>
public sealed class EntrypointException : ShimException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public EntrypointException(EntrypointError error, string path, string reason, Exception? inner = null)
        : base(CodeFor(error), $"entrypoint {path}: {reason}", inner)
    {
        Error = error;
        EntrypointPath = path;
        Reason = reason;
    }

    /// <summary>The reason alone, without the path.</summary>
    internal string Reason { get; }

    /// <summary>Why the entrypoint was rejected.</summary>
    public EntrypointError Error { get; }

    /// <summary>The entrypoint as the container's spec names it.</summary>
    public string EntrypointPath { get; }

    private static StatusCode CodeFor(EntrypointError error) => error switch
    {
        EntrypointError.NotFound => StatusCode.NotFound,
        _ => StatusCode.InvalidArgument,
    };
}
