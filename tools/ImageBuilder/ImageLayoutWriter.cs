namespace ImageBuilder;

/// <summary>
/// Writes an <see cref="ImageDefinition"/> as an OCI image-layout tarball (oci-layout, index.json, blobs/sha256/…)
/// that <c>ctr image import</c> accepts.
/// </summary>
public static class ImageLayoutWriter
{
    /// <summary>Builds the image and writes the tarball to <paramref name="outputPath"/>, replacing any existing file.</summary>
    /// <remarks>
    /// All inputs are read before the output is touched, and the tarball is written beside the output and renamed
    /// into place, so a failure never leaves a partial tarball behind.
    /// </remarks>
    /// <exception cref="InputNotFoundException">An input file is missing or unreadable.</exception>
    /// <exception cref="OutputNotWritableException">The output cannot be written.</exception>
    public static BuiltImage Write(ImageDefinition image, string outputPath)
    {
        var (blobs, built) = Build(image, Path.GetFullPath(outputPath));
        WriteAtomically(built.Path, blobs);
        return built;
    }

    /// <summary>Builds the image into a byte array holding the tarball.</summary>
    /// <param name="image">The image.</param>
    /// <param name="built">What was built; its <see cref="BuiltImage.Path"/> is empty.</param>
    /// <exception cref="InputNotFoundException">An input file is missing or unreadable.</exception>
    public static byte[] WriteToArray(ImageDefinition image, out BuiltImage built)
    {
        (var blobs, built) = Build(image, string.Empty);
        using var buffer = new MemoryStream();
        WriteTar(buffer, blobs);
        return buffer.ToArray();
    }

    private static (Blobs Blobs, BuiltImage Built) Build(ImageDefinition image, string outputPath)
    {
        var layers = image.Layers.Select(l => l.Build()).ToList();
        var layerDescriptors = layers.Select(l => new OciDocuments.Descriptor(l.MediaType, l.Digest, l.Data.LongLength, l.Title)).ToList();

        var (config, configMediaType) = image.Kind switch
        {
            ImageKind.WasmArtifact => (OciDocuments.WasmArtifactConfig(image, layers.Select(l => l.Digest)), MediaTypes.WasmArtifactConfig),
            _ => (OciDocuments.ImageConfig(image, layers.Where(l => l.DiffId is not null).Select(l => l.DiffId!)), MediaTypes.ImageConfig),
        };
        var configDescriptor = new OciDocuments.Descriptor(configMediaType, Digest.Sha256(config), config.LongLength);
        var manifest = OciDocuments.Manifest(configDescriptor, layerDescriptors);
        var manifestDescriptor = new OciDocuments.Descriptor(MediaTypes.ImageManifest, Digest.Sha256(manifest), manifest.LongLength);
        var index = OciDocuments.Index(manifestDescriptor, image);

        var blobs = new Blobs(OciDocuments.Layout(), index, new SortedDictionary<string, byte[]>(StringComparer.Ordinal));
        blobs.ByDigest[configDescriptor.Digest] = config;
        blobs.ByDigest[manifestDescriptor.Digest] = manifest;
        foreach (var layer in layers)
        {
            blobs.ByDigest[layer.Digest] = layer.Data;
        }
        var built = new BuiltImage(outputPath, image.Name, manifestDescriptor.Digest, configDescriptor.Digest,
            layers.Select(l => l.Digest).ToList());
        return (blobs, built);
    }

    private static void WriteAtomically(string outputPath, Blobs blobs)
    {
        // A fixed name beside the output: the rename stays on one filesystem, and nothing random enters the build.
        var directory = Path.GetDirectoryName(outputPath) ?? ".";
        if (!Directory.Exists(directory))
        {
            throw new OutputNotWritableException(outputPath, new DirectoryNotFoundException($"directory {directory} does not exist"));
        }
        if (Directory.Exists(outputPath))
        {
            throw new OutputNotWritableException(outputPath, new IOException("it is a directory"));
        }
        var partial = Path.Combine(directory, "." + Path.GetFileName(outputPath) + ".partial");
        try
        {
            using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                WriteTar(file, blobs);
                file.Flush(flushToDisk: true);
            }
            File.Move(partial, outputPath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            TryDelete(partial);
            throw new OutputNotWritableException(outputPath, e);
        }
        catch
        {
            TryDelete(partial);
            throw;
        }
    }

    private static void WriteTar(Stream stream, Blobs blobs)
    {
        using var writer = DeterministicTar.Create(stream);
        DeterministicTar.WriteFile(writer, "oci-layout", blobs.Layout, Modes.File);
        DeterministicTar.WriteFile(writer, "index.json", blobs.Index, Modes.File);
        DeterministicTar.WriteDirectory(writer, "blobs", Modes.Directory);
        DeterministicTar.WriteDirectory(writer, "blobs/sha256", Modes.Directory);
        foreach (var (digest, data) in blobs.ByDigest)
        {
            DeterministicTar.WriteFile(writer, "blobs/sha256/" + Digest.Hex(digest), data, Modes.Blob);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original error is the one worth reporting.
        }
    }

    private sealed record Blobs(byte[] Layout, byte[] Index, SortedDictionary<string, byte[]> ByDigest);
}
