namespace ImageBuilder;

/// <summary>One entry of a filesystem layer: a file, a directory or a symlink at a path inside the image.</summary>
public abstract record LayerEntry
{
    private protected LayerEntry(string path)
    {
        Path = NormalizePath(path);
    }

    /// <summary>The path inside the image, without a leading slash (e.g. <c>bin/sh</c>).</summary>
    public string Path { get; }

    /// <summary>A regular file whose content is read from the host when the layer is built.</summary>
    /// <param name="imagePath">The path inside the image.</param>
    /// <param name="hostPath">The host file to copy.</param>
    /// <param name="mode">The permission bits; null takes 0755 if the host file is executable by its owner, else 0644.</param>
    public static FileEntry File(string imagePath, string hostPath, UnixFileMode? mode = null) =>
        new(imagePath, hostPath, null, mode);

    /// <summary>A regular file with the given content.</summary>
    /// <param name="imagePath">The path inside the image.</param>
    /// <param name="content">The file's bytes.</param>
    /// <param name="mode">The permission bits; null means 0644.</param>
    public static FileEntry Bytes(string imagePath, byte[] content, UnixFileMode? mode = null) =>
        new(imagePath, null, content, mode);

    /// <summary>A directory.</summary>
    public static DirectoryEntry Directory(string imagePath, UnixFileMode mode = Modes.Directory) => new(imagePath, mode);

    /// <summary>A symbolic link to <paramref name="target"/> (kept as written, relative or absolute).</summary>
    public static SymlinkEntry Symlink(string imagePath, string target) => new(imagePath, target);

    internal static string NormalizePath(string path)
    {
        var trimmed = path.Replace('\\', '/').Trim('/');
        if (trimmed.Length == 0)
        {
            throw new ArgumentException("a layer entry needs a path below /", nameof(path));
        }
        if (trimmed.Split('/').Any(part => part is "" or "." or ".."))
        {
            throw new ArgumentException($"layer entry path '{path}' must not contain empty, '.' or '..' parts", nameof(path));
        }
        return trimmed;
    }
}

/// <summary>A regular file in a layer, from a host file or from bytes.</summary>
public sealed record FileEntry : LayerEntry
{
    internal FileEntry(string imagePath, string? hostPath, byte[]? content, UnixFileMode? mode)
        : base(imagePath)
    {
        HostPath = hostPath;
        Content = content;
        Mode = mode;
    }

    /// <summary>The host file to copy, or null when <see cref="Content"/> is set.</summary>
    public string? HostPath { get; }

    /// <summary>The content, or null when it comes from <see cref="HostPath"/>.</summary>
    public byte[]? Content { get; }

    /// <summary>The permission bits, or null for the default described on <see cref="LayerEntry.File"/>.</summary>
    public UnixFileMode? Mode { get; }
}

/// <summary>A directory in a layer.</summary>
public sealed record DirectoryEntry : LayerEntry
{
    internal DirectoryEntry(string imagePath, UnixFileMode mode)
        : base(imagePath)
    {
        Mode = mode;
    }

    /// <summary>The permission bits.</summary>
    public UnixFileMode Mode { get; }
}

/// <summary>A symbolic link in a layer.</summary>
public sealed record SymlinkEntry : LayerEntry
{
    internal SymlinkEntry(string imagePath, string target)
        : base(imagePath)
    {
        Target = target;
    }

    /// <summary>Where the link points.</summary>
    public string Target { get; }
}
