using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Finds the program a container runs, by runwasi's rules: <c>args[0]</c> is <c>path[#function]</c>; a path with a
/// slash is taken as is (relative to the cwd if not absolute), a bare name is looked up in the spec's <c>PATH</c>
/// and then in the cwd. Every lookup is made by descriptor inside the rootfs (<see cref="RootfsPath"/>), and the
/// module is read through the descriptor that lookup returned, so no host file is ever read in its place. The file
/// must be a regular file that starts with the wasm magic (a core module or a component, told apart by the header)
/// or be <c>.wat</c> text.
/// </summary>
public static class EntrypointResolver
{
    /// <summary>Resolves the entrypoint of a container and reads its module; throws
    /// <see cref="EntrypointException"/> with the path and the reason when there is nothing runnable.</summary>
    public static Entrypoint Resolve(string rootfs, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd)
    {
        using var root = RootfsPath.OpenRoot(rootfs);
        return Resolve(root, args, env, cwd);
    }

    /// <summary>As <see cref="Resolve(string, IReadOnlyList{string}, IReadOnlyList{string}, string)"/>, from a
    /// descriptor of the rootfs.</summary>
    internal static Entrypoint Resolve(SafeFileHandle root, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd)
    {
        if (args.Count == 0 || string.IsNullOrEmpty(args[0]))
        {
            throw new EntrypointException(EntrypointError.Missing, "\"\"", "process.args is empty: nothing to run");
        }
        var (name, function) = Split(args[0]);
        if (name.Length == 0)
        {
            throw new EntrypointException(EntrypointError.Missing, args[0], "no module path before '#'");
        }
        using var found = name.Contains('/') ? RootfsPath.Open(root, name, cwd) : Search(root, name, env, cwd);
        var bytes = ReadModule(found, name);
        return new Entrypoint
        {
            Name = name,
            Function = function,
            Bytes = bytes,
            Format = Detect(name, bytes),
        };
    }

    /// <summary>
    /// Opens (<c>O_PATH</c>) the file <paramref name="name"/> (a container path, or a bare name searched as
    /// <see cref="Resolve(string, IReadOnlyList{string}, IReadOnlyList{string}, string)"/> does) leads to inside the
    /// rootfs, or returns null when there is no such file. Never throws for a bad name: callers use it to decide, and
    /// leave the errors to Resolve.
    /// </summary>
    internal static SafeFileHandle? Find(SafeFileHandle root, string name, IReadOnlyList<string> env, string cwd)
    {
        if (name.Length == 0)
        {
            return null;
        }
        try
        {
            var found = name.Contains('/') ? RootfsPath.Open(root, name, cwd) : Search(root, name, env, cwd);
            if (RootfsPath.KindOf(found) == RootfsPath.Kind.File)
            {
                return found;
            }
            found.Dispose();
            return null;
        }
        catch (Exception e) when (e is EntrypointException or IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// Where the file <paramref name="name"/> leads to inside the rootfs, as a host path, or null when there is no
    /// such file. For display only: a host path can be swapped by whoever writes the rootfs, so anything that opens
    /// the file must resolve it by descriptor instead.
    /// </summary>
    public static string? Locate(string rootfs, string name, IReadOnlyList<string> env, string cwd)
    {
        try
        {
            using var root = RootfsPath.OpenRoot(rootfs);
            using var found = Find(root, name, env, cwd);
            return found is null ? null : new FileInfo($"/proc/self/fd/{(int)found.DangerousGetHandle()}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Splits <c>path#function</c>; the function defaults to <see cref="Entrypoint.DefaultFunction"/>.</summary>
    public static (string Name, string Function) Split(string arg0)
    {
        var hash = arg0.LastIndexOf('#');
        if (hash < 0)
        {
            return (arg0, Entrypoint.DefaultFunction);
        }
        var function = arg0[(hash + 1)..];
        return (arg0[..hash], function.Length == 0 ? Entrypoint.DefaultFunction : function);
    }

    // PATH, then the cwd, as a shell would: the first directory that holds a regular file of that name wins.
    private static SafeFileHandle Search(SafeFileHandle root, string name, IReadOnlyList<string> env, string cwd)
    {
        var path = env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?["PATH=".Length..] ?? "";
        SafeFileHandle? other = null;
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Append(cwd))
        {
            SafeFileHandle candidate;
            try
            {
                candidate = RootfsPath.Open(root, $"{dir.TrimEnd('/')}/{name}", cwd);
            }
            catch (EntrypointException)
            {
                // Not there, or an unusable PATH entry: skipped, as a shell skips it.
                continue;
            }
            if (RootfsPath.KindOf(candidate) == RootfsPath.Kind.File)
            {
                other?.Dispose();
                return candidate;
            }
            // A directory or a FIFO of that name is kept only to report it if nothing better turns up.
            if (other is null)
            {
                other = candidate;
            }
            else
            {
                candidate.Dispose();
            }
        }
        return other ?? throw new EntrypointException(EntrypointError.NotFound, name,
            "no such file in the rootfs (searched PATH and the cwd)");
    }

    private static byte[] ReadModule(SafeFileHandle found, string name)
    {
        switch (RootfsPath.KindOf(found))
        {
            case RootfsPath.Kind.Directory:
                throw new EntrypointException(EntrypointError.NotWasm, name, "is a directory");
            case RootfsPath.Kind.Other:
                throw new EntrypointException(EntrypointError.NotWasm, name, "is not a regular file (a FIFO, socket or device)");
        }
        try
        {
            using var file = RootfsPath.OpenForReading(found, name);
            using var stream = new FileStream(file, FileAccess.Read, bufferSize: 0);
            var length = stream.Length;
            var limit = ModuleSizeLimit.Bytes;
            if (length > limit)
            {
                throw new EntrypointException(EntrypointError.InvalidModule, name, ModuleSizeLimit.TooLarge(length, limit));
            }
            var bytes = new byte[length];
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EntrypointException(EntrypointError.NotFound, name, $"cannot read: {e.Message}", e);
        }
    }

    private static ModuleFormat Detect(string name, ReadOnlySpan<byte> bytes)
    {
        if (WasmBinary.FormatOf(bytes[..Math.Min(bytes.Length, WasmBinary.HeaderLength)]) is { } format)
        {
            return format;
        }
        if (name.EndsWith(".wat", StringComparison.Ordinal))
        {
            return ModuleFormat.Text;
        }
        throw new EntrypointException(EntrypointError.NotWasm, name, "not a wasm module or wat file");
    }
}
