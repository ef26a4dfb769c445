namespace ImageBuilder;

/// <summary>
/// A host file carried as a layer unchanged, with a media type of the caller's choice: the wasm module of a
/// wasm-layer image or of a wasm artifact. It adds nothing to the rootfs diff ids, as runwasi's images do,
/// which is why containerd before 1.6.25/1.7.7 refuses to unpack such images.
/// </summary>
public sealed class BlobLayer : Layer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="mediaType">The layer media type, e.g. <see cref="MediaTypes.WasmComponentLayer"/>.</param>
    /// <param name="hostPath">The file whose bytes are the layer.</param>
    /// <param name="title">The layer's <c>org.opencontainers.image.title</c> annotation: the module name a container's
    /// <c>args[0]</c> selects the layer by; null for none.</param>
    public BlobLayer(string mediaType, string hostPath, string? title = null)
    {
        MediaType = mediaType;
        HostPath = hostPath;
        Title = title;
    }

    /// <summary>The layer media type.</summary>
    public string MediaType { get; }

    /// <summary>The file whose bytes are the layer.</summary>
    public string HostPath { get; }

    /// <summary>The layer's title annotation, or null.</summary>
    public string? Title { get; }

    internal override LayerBlob Build() => new(HostFiles.Read(HostPath, "layer file"), MediaType, DiffId: null, Title);
}
