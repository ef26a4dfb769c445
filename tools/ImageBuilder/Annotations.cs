namespace ImageBuilder;

/// <summary>Annotation keys the builder puts on index.json descriptors.</summary>
public static class Annotations
{
    /// <summary>The OCI reference name; holds the tag, as most OCI tools write it.</summary>
    public const string RefName = "org.opencontainers.image.ref.name";

    /// <summary>The OCI title of a layer; for a wasm layer, the module name a container's <c>args[0]</c> selects it by.</summary>
    public const string Title = "org.opencontainers.image.title";

    /// <summary>containerd's full image name; with it, <c>ctr image import</c> imports under the full name on 1.6, 1.7 and 2.x.</summary>
    public const string ContainerdImageName = "io.containerd.image.name";
}
