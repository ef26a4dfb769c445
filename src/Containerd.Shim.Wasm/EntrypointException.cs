using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A container's entrypoint cannot run. The message names the entrypoint path and the reason, and is what
/// containerd (and so <c>ctr</c>) shows for the failed Create.
/// </summary>
public sealed class EntrypointException : ShimException
{
    // args[0] is the spec's text: escaped, and cut where no real path goes.
    private const int MaxPathLength = 512;

    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public EntrypointException(EntrypointError error, string path, string reason, Exception? inner = null)
        : base(CodeFor(error), $"entrypoint {UntrustedText.Excerpt(path, MaxPathLength)}: {reason}", inner)
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
