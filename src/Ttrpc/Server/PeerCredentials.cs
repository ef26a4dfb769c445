using System.Buffers.Binary;
using System.Net.Sockets;

namespace Ttrpc;

/// <summary>The process, user and group on the other end of a Unix socket (SO_PEERCRED).</summary>
/// <param name="Pid">Peer process id.</param>
/// <param name="Uid">Peer effective user id.</param>
/// <param name="Gid">Peer effective group id.</param>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    private static readonly Lazy<(uint Uid, uint Gid)> s_self = new(ReadSelf);

    /// <summary>The effective uid and gid of this process.</summary>
    public static (uint Uid, uint Gid) Self => s_self.Value;

    /// <summary>Reads the credentials of the peer of a connected Unix socket.</summary>
    public static PeerCredentials Of(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12];
        int n = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (n < 12)
        {
            throw new SocketException((int)SocketError.ProtocolNotSupported);
        }

        return new PeerCredentials(
            BinaryPrimitives.ReadInt32LittleEndian(ucred),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]));
    }

    /// <summary>
    /// containerd's ttrpc accepts a shim connection only from the same effective user and
    /// group as the server; root gets no exemption there, and none here.
    /// </summary>
    public bool IsSameUserAs((uint Uid, uint Gid) self) => Uid == self.Uid && Gid == self.Gid;

    // /proc/self/status instead of geteuid(2)/getegid(2): no P/Invoke to keep trim- and AOT-clean.
    private static (uint, uint) ReadSelf()
    {
        uint uid = 0, gid = 0;
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                uid = EffectiveId(line);
            }
            else if (line.StartsWith("Gid:", StringComparison.Ordinal))
            {
                gid = EffectiveId(line);
            }
        }

        return (uid, gid);
    }

    // "Uid:\treal\teffective\tsaved\tfs"
    private static uint EffectiveId(string line) =>
        uint.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);
}
