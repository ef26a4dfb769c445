using Containerd.Runtime.TaskV2;

namespace Containerd.Shimkit;

/// <summary>
/// The flags containerd passed a shim binary, for a shim whose <c>start</c> and <c>delete</c> are its own (a client of
/// a daemon that serves the Task API, rather than a shim that serves it itself).
/// </summary>
/// <param name="Namespace">The <c>-namespace</c> flag.</param>
/// <param name="Address">containerd's gRPC address (<c>-address</c>).</param>
/// <param name="TtrpcAddress">containerd's ttrpc address (<c>TTRPC_ADDRESS</c>, else the gRPC address plus <c>.ttrpc</c>).</param>
/// <param name="Id">The container id (<c>-id</c>).</param>
/// <param name="Bundle">The bundle directory (<c>-bundle</c>, else the working directory containerd started us in).</param>
/// <param name="Debug">The <c>-debug</c> flag.</param>
public sealed record ShimInvocation(string Namespace, string Address, string TtrpcAddress, string Id, string Bundle, bool Debug)
{
    /// <summary>The pod's sandbox id when the container's spec names one (<c>io.kubernetes.cri.sandbox-id</c>), else
    /// the container id: the unit containerd's shims group containers by.</summary>
    public string GroupingId => ShimStart.GroupingId(Bundle, Id);
}

/// <summary>
/// <c>start</c> and <c>delete</c> of a shim binary that does not serve the Task API itself. <see cref="ShimMain"/> keeps
/// the rest of the contract (flags, <c>-v</c>, <c>-info</c>, the <c>address</c> file, printing the answers).
/// </summary>
public interface IShimActions
{
    /// <summary>Finds or makes the server for the container and returns its ttrpc address (<c>unix://</c> path).
    /// Throw <see cref="ShimException"/> with a message saying what is wrong and how to fix it.</summary>
    string Start(ShimInvocation invocation);

    /// <summary>Cleans up after a container whose server is gone and says how its task ended.</summary>
    DeleteResponse Delete(ShimInvocation invocation);
}
