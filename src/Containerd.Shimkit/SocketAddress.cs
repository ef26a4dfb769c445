using System.Net.Sockets;
using System.Text;

namespace Containerd.Shimkit;

/// <summary>
/// Where a shim listens. containerd's shims derive the socket from containerd's address, the namespace and the
/// grouping id (the pod's sandbox id, else the container id), so every container of a pod finds the same shim.
/// </summary>
public static class SocketAddress
{
    /// <summary>The directory containerd's shims put their sockets in; fixed, as in containerd.</summary>
    public const string SocketRoot = "/run/containerd/s";

    /// <summary>The annotation CRI puts on every container of a pod.</summary>
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";

    /// <summary>
    /// <c>unix:///run/containerd/s/&lt;hex sha256 of clean(address/namespace/groupingId)&gt;</c>, the value Go's
    /// <c>filepath.Join</c> and <c>sha256.Sum256</c> produce in containerd's shim utilities.
    /// </summary>
    public static string Compute(string containerdAddress, string ns, string groupingId)
    {
        var joined = GoPath.Join(containerdAddress, ns, groupingId);
        var digest = Sha256.Hash(Encoding.UTF8.GetBytes(joined));
        return "unix://" + SocketRoot + "/" + Convert.ToHexStringLower(digest);
    }

    /// <summary>The filesystem path of a <c>unix://</c> address (unchanged when it has no scheme).</summary>
    public static string ToPath(string address) =>
        address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;

    /// <summary>Whether something accepts connections on the unix socket at <paramref name="path"/> (a socket file
    /// left by a dead process does not).</summary>
    public static bool IsServing(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
