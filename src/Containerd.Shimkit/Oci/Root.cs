namespace Containerd.Shimkit.Oci;

/// <summary>The container's root filesystem (<c>root</c> in config.json).</summary>
public sealed class Root
{
    /// <summary>Path of the root filesystem, absolute or relative to the bundle.</summary>
    public string Path { get; set; } = "";

    /// <summary>Whether the root filesystem is read-only.</summary>
    public bool Readonly { get; set; }
}
