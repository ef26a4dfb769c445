using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Tells a plain Linux container from a wasm one: its <c>args[0]</c>, resolved by descriptor inside the rootfs by
/// the entrypoint rules, is a regular file with an execute bit that starts with the ELF magic or <c>#!</c>. Only the
/// first four bytes are read, through the descriptor the lookup returned (a FIFO or device is never opened). Wasm
/// modules, <c>.wat</c> files and names that are not in the rootfs at all (the module of an OCI wasm-layer image) are
/// not Linux executables. The answer only picks the runtime: runc then confines the container on its own terms.
/// </summary>
internal static class LinuxExecutable
{
    private static ReadOnlySpan<byte> ElfMagic => [0x7F, (byte)'E', (byte)'L', (byte)'F'];

    private const uint AnyExecute = 0b001_001_001;

    /// <summary>Where the Linux executable <paramref name="args"/>[0] names was found (a host path, for the log), or
    /// null when it is none.</summary>
    public static string? Find(string rootfs, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd)
    {
        if (args.Count == 0 || string.IsNullOrEmpty(args[0]))
        {
            return null;
        }
        SafeFileHandle root;
        try
        {
            root = RootfsPath.OpenRoot(rootfs);
        }
        catch (IOException)
        {
            return null;
        }
        using (root)
        {
            using var found = EntrypointResolver.Find(root, args[0], env, cwd);
            if (found is null)
            {
                // `path#function` is a wasm entrypoint; a Linux program with '#' in its name was looked up whole.
                return null;
            }
            return IsLinuxExecutable(found) ? new FileInfo($"/proc/self/fd/{(int)found.DangerousGetHandle()}").LinkTarget : null;
        }
    }

    /// <summary>Whether the regular file behind <paramref name="found"/> (an O_PATH descriptor) has an execute bit
    /// and starts with the ELF magic or <c>#!</c>.</summary>
    public static bool IsLinuxExecutable(SafeFileHandle found)
    {
        try
        {
            if ((RootfsPath.Mode(found) & AnyExecute) == 0)
            {
                return false;
            }
            Span<byte> head = stackalloc byte[4];
            using var file = RootfsPath.OpenForReading(found, "args[0]");
            var read = RandomAccess.Read(file, head, 0);
            return (read == 4 && head.SequenceEqual(ElfMagic)) || (read >= 2 && head[0] == '#' && head[1] == '!');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Unreadable or not a regular file: let the wasm resolver report it with its reason.
            return false;
        }
    }
}
