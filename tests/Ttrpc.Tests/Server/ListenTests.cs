using System.Net.Sockets;
using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests.Server;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ListenTests
{
    [Fact]
    public async Task Serves_a_socket_that_is_already_listening_as_a_shim_inherits_fd_3()
    {
        string dir = Directory.CreateTempSubdirectory("ttrpc-fd-").FullName;
        string path = Path.Combine(dir, "inherited.sock");
        try
        {
            var listening = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listening.Bind(new UnixDomainSocketEndPoint(path));
            listening.Listen(16);
            // Rewrap the raw descriptor, exactly as a shim does with fd 3. The new wrapper is the only
            // owner from now on: neither the old Socket nor its handle may ever close the descriptor,
            // or a later close would hit whatever socket reuses the number in a parallel test.
            var inherited = new Socket(new SafeSocketHandle(listening.SafeHandle.DangerousGetHandle(), ownsHandle: true));
            listening.SafeHandle.SetHandleAsInvalid();
            GC.SuppressFinalize(listening);

            await using var server = new TtrpcServer();
            Echo.Echo.BindService(server.Binder, new EchoService());
            server.Listen(inherited);
            await server.StartAsync();
            await using var channel = new TtrpcChannel(path);

            var response = await new Echo.Echo.EchoClient(channel.CreateCallInvoker()).EchoAsync(new EchoRequest { Text = "fd" });

            Assert.Equal("fd", response.Text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_stale_socket_file_is_replaced_but_a_live_one_is_refused()
    {
        string dir = Directory.CreateTempSubdirectory("ttrpc-stale-").FullName;
        string path = Path.Combine(dir, "ttrpc.sock");
        try
        {
            // What a crashed server leaves behind: a socket file nobody listens on. (.NET unlinks the
            // file when a bound socket is disposed, so bind elsewhere and move the file into place.)
            using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                string elsewhere = Path.Combine(dir, "dead.sock");
                dead.Bind(new UnixDomainSocketEndPoint(elsewhere));
                File.Move(elsewhere, path);
            }

            Assert.True(File.Exists(path));
            await using var first = new TtrpcServer();
            first.Listen(path);
            await first.StartAsync();

            await using var second = new TtrpcServer();
            Assert.Throws<IOException>(() => second.Listen(path));

            await first.ShutdownAsync();
            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Listen_on_a_path_makes_a_0600_socket_whatever_the_umask_and_leaves_no_scratch_folder()
    {
        string dir = Directory.CreateTempSubdirectory("ttrpc-mode-").FullName;
        string path = Path.Combine(dir, "ttrpc.sock");
        try
        {
            // The usual umask 022 would give 0755.
            await using var server = new TtrpcServer();
            Echo.Echo.BindService(server.Binder, new EchoService());
            server.Listen(path);
            await server.StartAsync();

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal([path], Directory.GetFileSystemEntries(dir));
            await using var channel = new TtrpcChannel(path);
            var response = await new Echo.Echo.EchoClient(channel.CreateCallInvoker()).EchoAsync(new EchoRequest { Text = "mode" });
            Assert.Equal("mode", response.Text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void An_owner_only_socket_never_replaces_a_path_that_exists()
    {
        string dir = Directory.CreateTempSubdirectory("ttrpc-taken-").FullName;
        string path = Path.Combine(dir, "taken.sock");
        try
        {
            using var first = OwnerOnlySocket.Listen(path, 4);
            var taken = Assert.Throws<SocketException>(() => OwnerOnlySocket.Listen(path, 4));
            Assert.Equal(SocketError.AddressAlreadyInUse, taken.SocketErrorCode);
            File.WriteAllText(Path.Combine(dir, "file"), "x");
            Assert.Throws<SocketException>(() => OwnerOnlySocket.Listen(Path.Combine(dir, "file"), 4));
            Assert.Equal("x", File.ReadAllText(Path.Combine(dir, "file")));
            // Only the two names: the scratch folders are gone after success and failure alike.
            Assert.Equal(2, Directory.GetFileSystemEntries(dir).Length);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
