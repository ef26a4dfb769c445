using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Ttrpc;

/// <summary>
/// Listening Unix sockets that only their owner can connect to (mode 0600), as containerd's runc shim makes its own.
/// </summary>
/// <remarks>
/// bind(2) creates the socket file with the process umask applied, and a chmod afterwards leaves a moment in which
/// the wider mode is in effect. Changing the umask around bind would close that moment, but the umask is shared by
/// every thread, so a server creating files on other threads meanwhile (a shared-mode daemon's sandboxes) would get
/// them with the wrong mode. Instead the socket is bound in a fresh 0700 folder beside its final path (the same
/// filesystem), made 0600 and listening there, and then hard-linked to its path: link(2) fails when the name is
/// taken, as bind does, so a live socket is never replaced.
/// </remarks>
public static partial class OwnerOnlySocket
{
    private const int EEXIST = 17;

    /// <summary>
    /// Binds a socket at <paramref name="path"/> with mode 0600 and listens on it. Throws
    /// <see cref="SocketException"/> with <see cref="SocketError.AddressAlreadyInUse"/> when the path exists.
    /// </summary>
    public static Socket Listen(string path, int backlog)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var scratch = Path.Combine(Path.GetDirectoryName(full)!, "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        if (MakeDirectory(scratch, 0b111_000_000) != 0)
        {
            throw new IOException($"creating {scratch} to bind {full}: errno {Marshal.GetLastPInvokeError()}");
        }
        var temporary = Path.Combine(scratch, "s");
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(temporary));
            if (Chmod(temporary, 0b110_000_000) != 0)
            {
                throw new IOException($"chmod 0600 {temporary}: errno {Marshal.GetLastPInvokeError()}");
            }
            // Listening before the socket gets its name: a connect that finds the name is never refused.
            socket.Listen(backlog);
            if (Link(temporary, full) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw errno == EEXIST
                    ? new SocketException((int)SocketError.AddressAlreadyInUse)
                    : new IOException($"linking the socket to {full}: errno {errno}");
            }
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        finally
        {
            TryDelete(temporary);
            try
            {
                Directory.Delete(scratch);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeDirectory(string path, int mode);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chmod(string path, int mode);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string newPath);
}
