namespace ImageBuilder;

/// <summary>A layer of an image: a filesystem tar (<see cref="FilesystemLayer"/>, or one written by the caller: <see cref="TarLayer"/>) or a raw blob such as a wasm module (<see cref="BlobLayer"/>).</summary>
public abstract class Layer
{
    private protected Layer()
    {
    }

    /// <summary>Produces the layer's blob; reads any host files now.</summary>
    /// <exception cref="InputNotFoundException">A host file is missing or unreadable.</exception>
    internal abstract LayerBlob Build();
}

/// <summary>A built layer: its bytes, media type, the diff id it adds to the rootfs (null for blobs that are not filesystem
/// changes) and the <c>org.opencontainers.image.title</c> annotation of its descriptor, if any.</summary>
internal sealed record LayerBlob(byte[] Data, string MediaType, string? DiffId, string? Title = null)
{
    public string Digest { get; } = ImageBuilder.Digest.Sha256(Data);
}
