namespace Containerd.Shim.Wasm;

/// <summary>
/// Tells a plain Linux container from a wasm one: its <c>args[0]</c>, resolved inside the rootfs by the entrypoint
/// rules (<see cref="EntrypointResolver.Locate"/>), is an executable file that starts with the ELF magic or <c>#!</c>.
/// Only the first four bytes are read. Wasm modules, <c>.wat</c> files and names that are not in the rootfs at all (the
/// module of an OCI wasm-layer image) are not Linux executables.
/// </summary>
internal static class LinuxExecutable
{
    private static ReadOnlySpan<byte> ElfMagic => [0x7F, (byte)'E', (byte)'L', (byte)'F'];

    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>The host path of the Linux executable <paramref name="args"/>[0] names, or null when it is none.</summary>
    public static string? Find(string rootfs, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd)
    {
        if (args.Count == 0 || string.IsNullOrEmpty(args[0]))
        {
            return null;
        }
        var path = EntrypointResolver.Locate(rootfs, args[0], env, cwd);
        if (path is null)
        {
            // `path#function` is a wasm entrypoint; a Linux program with '#' in its name was found whole above.
            var (name, _) = EntrypointResolver.Split(args[0]);
            if (name != args[0])
            {
                return null;
            }
        }
        return path is not null && IsLinuxExecutable(path) ? path : null;
    }

    /// <summary>Whether the file at <paramref name="hostPath"/> has an execute bit and starts with the ELF magic or <c>#!</c>.</summary>
    public static bool IsLinuxExecutable(string hostPath)
    {
        try
        {
            // Shims only run on Linux; the guard is what tells the platform analyzer so.
            if (OperatingSystem.IsWindows() || (File.GetUnixFileMode(hostPath) & AnyExecute) == 0)
            {
                return false;
            }
            Span<byte> head = stackalloc byte[4];
            using var file = File.OpenHandle(hostPath);
            var read = RandomAccess.Read(file, head, 0);
            return (read == 4 && head.SequenceEqual(ElfMagic)) || (read >= 2 && head[0] == '#' && head[1] == '!');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Unreadable: let the wasm resolver report it with its reason.
            return false;
        }
    }
}
