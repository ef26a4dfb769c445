namespace ImageBuilder;

/// <summary>The result of writing an image-layout tarball.</summary>
/// <param name="Path">The tarball.</param>
/// <param name="Name">The image name it imports as.</param>
/// <param name="ManifestDigest">The digest of the image manifest (what containerd's image record targets once unpacked by platform).</param>
/// <param name="ConfigDigest">The digest of the configuration blob.</param>
/// <param name="LayerDigests">The digests of the layers, bottom first.</param>
public sealed record BuiltImage(string Path, string Name, string ManifestDigest, string ConfigDigest, IReadOnlyList<string> LayerDigests);
