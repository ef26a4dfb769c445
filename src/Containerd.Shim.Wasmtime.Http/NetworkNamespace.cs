using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Sockets in a container's network namespace, made by the daemon, which stays in its own: a socket belongs to the
/// namespace of the thread that created it, for good, so a dedicated thread joins the container's namespace
/// (<c>setns</c> of the network namespace is per thread), creates (and binds) the socket, and returns to the daemon's
/// namespace before it ends. The runtime's other threads, which serve or connect the socket afterwards, never leave
/// the daemon's. Outgoing names are resolved on such a thread too, so the resolver's queries use the container's network.
/// </summary>
internal static partial class NetworkNamespace
{
    private const int CloneNewNet = 0x40000000;
    private const int ORdOnly = 0, OCloExec = 0x80000;

    /// <summary>The network namespace a container's spec names by path; null when it names none or asks for a new
    /// one (shared mode runs those in the daemon's own namespace).</summary>
    public static string? PathOf(Containerd.Shimkit.Oci.Spec spec) =>
        spec.Linux?.Namespaces?.LastOrDefault(n => n.Type == "network") is { Path: { Length: > 0 } path } ? path : null;

    /// <summary>A TCP socket bound to <paramref name="endpoint"/> (not yet listening) in the network namespace at
    /// <paramref name="netnsPath"/>, or in the daemon's own when that is null.</summary>
    public static Socket Bind(string? netnsPath, EndPoint endpoint)
    {
        if (netnsPath is null)
        {
            return BindHere(endpoint);
        }
        try
        {
            return RunAsync(netnsPath, () => BindHere(endpoint)).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not (SocketException or IOException))
        {
            throw new IOException(e.Message, e);
        }
    }

    /// <summary>
    /// An unconnected TCP socket per address, made in the network namespace at <paramref name="netnsPath"/>, for an
    /// outgoing connection that must leave from the container's network; connecting needs no particular thread.
    /// </summary>
    public static Task<Socket[]> SocketsAsync(string netnsPath, IReadOnlyList<IPAddress> addresses) =>
        RunAsync(netnsPath, () =>
        {
            var sockets = new List<Socket>(addresses.Count);
            try
            {
                foreach (var address in addresses)
                {
                    sockets.Add(new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true });
                }
                return sockets.ToArray();
            }
            catch
            {
                sockets.ForEach(s => s.Dispose());
                throw;
            }
        });

    /// <summary>Resolves <paramref name="host"/> from the network namespace at <paramref name="netnsPath"/>: the
    /// resolver's queries leave from the container's network, as the container's own would.</summary>
    public static Task<IPAddress[]> ResolveAsync(string netnsPath, string host) =>
        RunAsync(netnsPath, () => Dns.GetHostAddresses(host));

    /// <summary>
    /// Runs <paramref name="work"/> on a dedicated thread that has joined the network namespace at
    /// <paramref name="netnsPath"/> and returns to the daemon's before it ends. The task carries work's own exception.
    /// </summary>
    public static Task<T> RunAsync<T>(string netnsPath, Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(RunIn(netnsPath, work));
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }, 256 << 10)
        { IsBackground = true, Name = "netns run" };
        thread.Start();
        return done.Task;
    }

    // On the dedicated thread only.
    private static T RunIn<T>(string netnsPath, Func<T> work)
    {
        var own = Open("/proc/thread-self/ns/net", ORdOnly | OCloExec);
        if (own < 0)
        {
            throw new IOException($"open /proc/thread-self/ns/net: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            var target = Open(netnsPath, ORdOnly | OCloExec);
            if (target < 0)
            {
                throw new IOException($"open network namespace {netnsPath}: errno {Marshal.GetLastPInvokeError()}");
            }
            try
            {
                if (SetNs(target, CloneNewNet) != 0)
                {
                    throw new IOException($"setns {netnsPath}: errno {Marshal.GetLastPInvokeError()}");
                }
            }
            finally
            {
                Close(target);
            }
            try
            {
                return work();
            }
            finally
            {
                // The thread ends right after; going back keeps it from ever running anything else in the
                // container's namespace (a thread-pool thread would, if the runtime ever reused this one).
                if (SetNs(own, CloneNewNet) != 0)
                {
                    Containerd.Shimkit.ShimLog.Warn($"setns back to the daemon's network namespace: errno {Marshal.GetLastPInvokeError()}");
                }
            }
        }
        finally
        {
            Close(own);
        }
    }

    private static Socket BindHere(EndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint is IPEndPoint { Address: var address } && address.Equals(IPAddress.IPv6Any))
            {
                // [::] takes IPv4 too, as Kestrel binds it.
                socket.DualMode = true;
            }
            socket.Bind(endpoint);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nsType);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
