namespace ImageBuilder;

/// <summary>Which configuration an image carries.</summary>
public enum ImageKind
{
    /// <summary>An OCI image configuration (<see cref="MediaTypes.ImageConfig"/>): regular and wasm-layer images.</summary>
    Image,

    /// <summary>A CNCF wasm artifact configuration (<see cref="MediaTypes.WasmArtifactConfig"/>) listing the layer digests.</summary>
    WasmArtifact,
}
