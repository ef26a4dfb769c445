namespace Containerd.Api.Client;

/// <summary>The image media types the client resolves when walking from an image to its manifest.</summary>
public static class OciMediaTypes
{
    /// <summary>OCI image index.</summary>
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";

    /// <summary>OCI image manifest.</summary>
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>Docker manifest list (the Docker form of an index).</summary>
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>Docker image manifest, schema 2.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

    /// <summary>True for an index or manifest list: a document that points at manifests per platform.</summary>
    public static bool IsIndex(string mediaType) => mediaType is ImageIndex or DockerManifestList;

    /// <summary>True for a single-platform image manifest.</summary>
    public static bool IsManifest(string mediaType) => mediaType is ImageManifest or DockerManifest;
}
