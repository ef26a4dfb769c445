using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>A named network namespace with lo up, removed at dispose.</summary>
internal sealed class NetNs : IAsyncDisposable
{
    private NetNs(string name, string inode)
    {
        Name = name;
        Inode = inode;
    }

    public string Name { get; }

    public string Path => $"/var/run/netns/{Name}";

    /// <summary>The namespace's inode, as /proc/*/fd links name it (net:[inode]).</summary>
    public string Inode { get; }

    public static async Task<NetNs> CreateAsync()
    {
        var name = $"wtd-{Guid.NewGuid().ToString("N")[..10]}";
        var add = await ProcessRunner.RunAsync("ip", ["netns", "add", name], timeout: TimeSpan.FromSeconds(30));
        Assert.True(add.Succeeded, add.ToString());
        var netns = new NetNs(name, "");
        try
        {
            var up = await ProcessRunner.RunAsync("ip", ["-n", name, "link", "set", "lo", "up"], timeout: TimeSpan.FromSeconds(30));
            Assert.True(up.Succeeded, up.ToString());
            var stat = await ProcessRunner.RunAsync("stat", ["-L", "-c", "%i", netns.Path], timeout: TimeSpan.FromSeconds(30));
            Assert.True(stat.Succeeded, stat.ToString());
            return new NetNs(name, stat.Stdout.Trim());
        }
        catch
        {
            await netns.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync() =>
        await ProcessRunner.RunAsync("ip", ["netns", "delete", Name], timeout: TimeSpan.FromSeconds(30));

    /// <summary>
    /// A TCP socket connected to <paramref name="endpoint"/> from inside this namespace: made on a thread that joins
    /// the namespace (setns affects only the calling thread) and returns to its own before it ends.
    /// </summary>
    public Task<Socket> ConnectAsync(IPEndPoint endpoint)
    {
        var made = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                using var own = File.OpenHandle("/proc/thread-self/ns/net");
                using var target = File.OpenHandle(Path);
                Check(SetNs((int)target.DangerousGetHandle(), CloneNewNet), "setns into " + Path);
                try
                {
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    try
                    {
                        socket.Connect(endpoint);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                    made.SetResult(socket);
                }
                finally
                {
                    Check(SetNs((int)own.DangerousGetHandle(), CloneNewNet), "setns back");
                }
            }
            catch (Exception e)
            {
                made.TrySetException(e);
            }
        }) { IsBackground = true, Name = "netns connect" };
        thread.Start();
        return made.Task;
    }

    private const int CloneNewNet = 0x40000000;

    [DllImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static extern int SetNs(int fd, int nstype);

    private static void Check(int rc, string what)
    {
        if (rc != 0)
        {
            throw new IOException($"{what}: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
