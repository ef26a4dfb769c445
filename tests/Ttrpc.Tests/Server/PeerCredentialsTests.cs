using System.Net.Sockets;

namespace Ttrpc.Tests.Server;

public class PeerCredentialsTests
{
    [Fact]
    public async Task Reads_the_peer_process_and_user_of_a_unix_socket()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ttrpc-cred-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        try
        {
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
            using var accepted = await listener.AcceptAsync();

            PeerCredentials peer = PeerCredentials.Of(accepted);

            Assert.Equal(Environment.ProcessId, peer.Pid);
            Assert.True(peer.IsSameUserAs(PeerCredentials.Self));
            Assert.False(peer.IsSameUserAs((PeerCredentials.Self.Uid + 1, PeerCredentials.Self.Gid)));
            Assert.False(peer.IsSameUserAs((PeerCredentials.Self.Uid, PeerCredentials.Self.Gid + 1)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
