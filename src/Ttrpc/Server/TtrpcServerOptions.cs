using Grpc.Core;

namespace Ttrpc;

/// <summary>Settings of a <see cref="TtrpcServer"/>.</summary>
public sealed class TtrpcServerOptions
{
    /// <summary>
    /// Reject connections from processes whose effective uid/gid differ from this process's
    /// (SO_PEERCRED), as containerd's shims do. Default true.
    /// </summary>
    public bool RequireSameUser { get; set; } = true;

    /// <summary>
    /// Run handlers on the connection's read loop instead of the thread pool. Faster for
    /// handlers that never block, but one blocking handler then stalls its connection. Default false.
    /// </summary>
    public bool InlineHandlers { get; set; }

    /// <summary>Listen backlog for sockets the server binds itself. Default 1024.</summary>
    public int Backlog { get; set; } = 1024;

    /// <summary>
    /// Maps handler exceptions to a status before the defaults apply (RpcException keeps its
    /// status, anything else is Unknown). Return null to fall through to the defaults.
    /// </summary>
    public Func<Exception, Status?>? ExceptionMapper { get; set; }
}
