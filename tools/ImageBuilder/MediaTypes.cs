namespace ImageBuilder;

/// <summary>The OCI and wasm media types the builder writes.</summary>
public static class MediaTypes
{
    /// <summary>An OCI image index (index.json and nested indexes).</summary>
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";

    /// <summary>An OCI image manifest.</summary>
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>An OCI image configuration.</summary>
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";

    /// <summary>An uncompressed filesystem layer.</summary>
    public const string Layer = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>A gzip-compressed filesystem layer.</summary>
    public const string LayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>A raw wasm module or component carried as its own layer (runwasi's wasm-layer images).</summary>
    public const string WasmComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

    /// <summary>The configuration of a CNCF wasm OCI artifact.</summary>
    public const string WasmArtifactConfig = "application/vnd.wasm.config.v0+json";

    /// <summary>The layer of a CNCF wasm OCI artifact.</summary>
    public const string WasmArtifactLayer = "application/wasm";
}
