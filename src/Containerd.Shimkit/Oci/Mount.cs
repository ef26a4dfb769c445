namespace Containerd.Shimkit.Oci;

/// <summary>One entry of <c>mounts</c> in config.json.</summary>
public sealed class Mount
{
    /// <summary>Where the mount appears inside the container.</summary>
    public string Destination { get; set; } = "";

    /// <summary>Filesystem type, e.g. <c>bind</c>, <c>tmpfs</c>.</summary>
    public string? Type { get; set; }

    /// <summary>Device or host path.</summary>
    public string? Source { get; set; }

    /// <summary>Mount options as fstab would list them.</summary>
    public List<string>? Options { get; set; }
}
