namespace Containerd.Shim.Wasm;

/// <summary>
/// Finds the program a container runs, by runwasi's rules: <c>args[0]</c> is <c>path[#function]</c>; a path with a
/// slash is taken as is (relative to the cwd if not absolute), a bare name is looked up in the spec's <c>PATH</c>
/// and then in the cwd; everything is resolved inside the rootfs (<see cref="RootfsPath"/>). The file must start
/// with the wasm magic (a core module or a component, told apart by the header) or be <c>.wat</c> text.
/// </summary>
public static class EntrypointResolver
{
    /// <summary>Resolves the entrypoint of a container; throws <see cref="EntrypointException"/> with the path and
    /// the reason when there is nothing runnable.</summary>
    public static Entrypoint Resolve(string rootfs, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd)
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

        var resolution = name.Contains('/') ? RootfsPath.Resolve(rootfs, name, cwd) : Search(rootfs, name, env, cwd);
        if (!File.Exists(resolution.HostPath))
        {
            if (Directory.Exists(resolution.HostPath))
            {
                throw new EntrypointException(EntrypointError.NotWasm, name, "is a directory");
            }
            if (resolution.AbsoluteLink is { } link)
            {
                throw new EntrypointException(EntrypointError.EscapesRootfs, name,
                    $"symlink {link} points outside the rootfs (absolute links resolve inside the rootfs, where the target does not exist)");
            }
            var where = name.Contains('/') ? "in the rootfs" : "in the rootfs (searched PATH and the cwd)";
            throw new EntrypointException(EntrypointError.NotFound, name, $"no such file {where}");
        }

        return new Entrypoint
        {
            Name = name,
            Function = function,
            Path = resolution.HostPath,
            Format = Detect(name, resolution.HostPath),
        };
    }

    /// <summary>
    /// The host path of the file <paramref name="name"/> (a container path, or a bare name searched as
    /// <see cref="Resolve"/> does) leads to inside the rootfs, or null when there is no such file or the path escapes
    /// the rootfs. Never throws for a bad name: callers use it to decide, and leave the errors to <see cref="Resolve"/>.
    /// </summary>
    public static string? Locate(string rootfs, string name, IReadOnlyList<string> env, string cwd)
    {
        if (name.Length == 0)
        {
            return null;
        }
        try
        {
            var resolution = name.Contains('/') ? RootfsPath.Resolve(rootfs, name, cwd) : Search(rootfs, name, env, cwd);
            return File.Exists(resolution.HostPath) ? resolution.HostPath : null;
        }
        catch (EntrypointException)
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

    private static RootfsPath.Resolution Search(string rootfs, string name, IReadOnlyList<string> env, string cwd)
    {
        var path = env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?["PATH=".Length..] ?? "";
        var dirs = path.Split(':', StringSplitOptions.RemoveEmptyEntries).Append(cwd);
        RootfsPath.Resolution? first = null;
        foreach (var dir in dirs)
        {
            RootfsPath.Resolution candidate;
            try
            {
                candidate = RootfsPath.Resolve(rootfs, $"{dir.TrimEnd('/')}/{name}", cwd);
            }
            catch (EntrypointException)
            {
                // A PATH entry that leads out of the rootfs is skipped, as a shell skips unusable entries.
                continue;
            }
            if (File.Exists(candidate.HostPath))
            {
                return candidate;
            }
            first ??= candidate;
        }
        return first ?? new RootfsPath.Resolution(Path.Combine(rootfs, name), null);
    }

    private static ModuleFormat Detect(string name, string hostPath)
    {
        Span<byte> head = stackalloc byte[WasmBinary.HeaderLength];
        int read;
        try
        {
            using var file = File.OpenHandle(hostPath);
            read = RandomAccess.Read(file, head, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EntrypointException(EntrypointError.NotFound, name, $"cannot read: {e.Message}", e);
        }
        if (WasmBinary.FormatOf(head[..read]) is { } format)
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
