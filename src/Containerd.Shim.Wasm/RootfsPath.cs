namespace Containerd.Shim.Wasm;

/// <summary>
/// Resolves a path as the container would see it, without ever leaving the rootfs: symlinks are followed by hand,
/// relative to the rootfs (an absolute target means the rootfs's root, as it would inside the container), and a
/// <c>..</c> that climbs above the root is an error instead of being clamped, so a crafted image cannot make the
/// shim read a host file.
/// </summary>
internal static class RootfsPath
{
    // The kernel's own limit on symlinks followed in one lookup (ELOOP).
    private const int MaxSymlinks = 40;

    /// <summary>The outcome of <see cref="Resolve"/>.</summary>
    /// <param name="HostPath">The host path inside the rootfs the container path leads to (it may not exist).</param>
    /// <param name="AbsoluteLink">The last absolute symlink followed, as <c>link -> target</c>, if any: a missing
    /// file behind it usually means a link that points at the host rather than into the image.</param>
    public readonly record struct Resolution(string HostPath, string? AbsoluteLink);

    /// <summary>
    /// Resolves <paramref name="containerPath"/> (absolute, or relative to <paramref name="cwd"/>) inside
    /// <paramref name="rootfs"/>. Throws <see cref="EntrypointException"/> when it escapes the rootfs or loops.
    /// </summary>
    public static Resolution Resolve(string rootfs, string containerPath, string cwd = "/")
    {
        rootfs = rootfs.TrimEnd('/');
        var start = containerPath.StartsWith('/') ? containerPath : $"{cwd.TrimEnd('/')}/{containerPath}";
        var pending = new LinkedList<string>(Split(start));
        var resolved = new List<string>();
        string? absoluteLink = null;
        var links = 0;
        while (pending.First is { } node)
        {
            pending.RemoveFirst();
            var part = node.Value;
            if (part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (resolved.Count == 0)
                {
                    throw new EntrypointException(EntrypointError.EscapesRootfs, containerPath,
                        "escapes the rootfs (\"..\" above the container's root)");
                }
                resolved.RemoveAt(resolved.Count - 1);
                continue;
            }
            var inContainer = "/" + string.Join('/', resolved.Append(part));
            var target = new FileInfo(rootfs + inContainer).LinkTarget;
            if (target is null)
            {
                resolved.Add(part);
                continue;
            }
            if (++links > MaxSymlinks)
            {
                throw new EntrypointException(EntrypointError.EscapesRootfs, containerPath,
                    $"too many levels of symbolic links (at {inContainer})");
            }
            if (target.StartsWith('/'))
            {
                absoluteLink = $"{inContainer} -> {target}";
                resolved.Clear();
            }
            foreach (var p in Split(target).Reverse())
            {
                pending.AddFirst(p);
            }
        }
        return new Resolution(rootfs + "/" + string.Join('/', resolved), absoluteLink);
    }

    private static IEnumerable<string> Split(string path) =>
        path.Split('/', StringSplitOptions.RemoveEmptyEntries);
}
