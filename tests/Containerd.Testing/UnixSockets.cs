using System.Net.Sockets;

namespace Containerd.Testing;

/// <summary>Probes for the Unix sockets daemons and shims serve on.</summary>
public static class UnixSockets
{
    /// <summary>True when something accepts connections on <paramref name="path"/> (a file left by a dead server does not).</summary>
    /// <param name="path">The socket file.</param>
    /// <returns>Whether a connect succeeded.</returns>
    public static bool Answers(string path)
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
