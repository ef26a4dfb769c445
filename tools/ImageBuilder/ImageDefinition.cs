namespace ImageBuilder;

/// <summary>Everything that goes into one image: its name, platform, runtime settings and layers.</summary>
public sealed class ImageDefinition
{
    /// <summary>The full image name, e.g. <c>ghcr.io/containerd/runwasi/wasi-demo-app:latest</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The platform recorded in the configuration and on the index descriptor.</summary>
    public Platform Platform { get; init; } = Platform.LinuxAmd64;

    /// <summary>The runtime settings (ignored for <see cref="ImageKind.WasmArtifact"/>, whose configuration has none).</summary>
    public ImageConfig Config { get; init; } = new();

    /// <summary>The layers, bottom first.</summary>
    public IReadOnlyList<Layer> Layers { get; init; } = [];

    /// <summary>The kind of configuration to write.</summary>
    public ImageKind Kind { get; init; } = ImageKind.Image;

    /// <summary>The tag part of <see cref="Name"/> (after the last ':' that follows the last '/'), or <c>latest</c>.</summary>
    public string Tag
    {
        get
        {
            var colon = Name.LastIndexOf(':');
            return colon > Name.LastIndexOf('/') ? Name[(colon + 1)..] : "latest";
        }
    }
}
