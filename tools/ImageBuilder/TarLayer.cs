namespace ImageBuilder;

/// <summary>
/// A filesystem layer whose uncompressed tar the caller wrote, carried unchanged: its diff id is the sha256 of
/// the bytes. Unlike <see cref="FilesystemLayer"/> nothing is checked or normalised, so tests can hand containerd
/// what a hostile image would (names with <c>..</c> or a leading <c>/</c>, hard links, links out of the rootfs).
/// </summary>
public sealed class TarLayer : Layer
{
    private readonly byte[]? _tar;

    /// <summary>A layer of the given tar bytes (copied now).</summary>
    /// <param name="tar">An uncompressed tar archive.</param>
    public TarLayer(byte[] tar)
    {
        ArgumentNullException.ThrowIfNull(tar);
        _tar = (byte[])tar.Clone();
    }

    /// <summary>A layer of a tar file on the host, read when the image is built.</summary>
    /// <param name="hostPath">An uncompressed tar archive.</param>
    public TarLayer(string hostPath)
    {
        ArgumentNullException.ThrowIfNull(hostPath);
        HostPath = hostPath;
    }

    /// <summary>The host file the tar is read from, or null when the bytes were given.</summary>
    public string? HostPath { get; }

    internal override LayerBlob Build()
    {
        var tar = _tar ?? HostFiles.Read(HostPath!, "layer tar");
        return new LayerBlob(tar, MediaTypes.Layer, Digest.Sha256(tar));
    }
}
