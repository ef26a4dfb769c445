using System.Text.Json;
using Containerd.Services.Images.V1;
using Containerd.Types;

namespace Containerd.Api.Client;

/// <summary>
/// Walks from an image name to its manifest through the image and content stores.
/// </summary>
public static class ImageContentExtensions
{
    /// <summary>
    /// Returns the manifest of <paramref name="imageName"/> for <paramref name="platform"/>: the target
    /// itself when it is a manifest, otherwise the index entry matching the platform's os and architecture
    /// (and variant, when the platform names one).
    /// </summary>
    /// <param name="client">The client (namespace) the image lives in.</param>
    /// <param name="imageName">The image name, e.g. <c>docker.io/library/busybox:latest</c>.</param>
    /// <param name="platform">The platform to pick from an index; <c>null</c> takes the first manifest.</param>
    /// <param name="cancellationToken">Cancels the reads.</param>
    /// <exception cref="Grpc.Core.RpcException">With <c>NotFound</c> when the image or a blob is missing.</exception>
    /// <exception cref="InvalidDataException">The index has no manifest for the platform, or a blob is not what its media type says.</exception>
    public static async Task<ImageManifest> GetImageManifestAsync(
        this ContainerdClient client,
        string imageName,
        Platform? platform = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var image = (await client.Images.GetAsync(new GetImageRequest { Name = imageName }, cancellationToken: cancellationToken).ConfigureAwait(false)).Image;
        var descriptor = image.Target;

        // Nested indexes are legal OCI; a small bound keeps a malformed cycle from looping forever.
        for (var depth = 0; depth < 4 && OciMediaTypes.IsIndex(descriptor.MediaType); depth++)
        {
            var index = await client.Content.ReadBlobAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false);
            descriptor = SelectFromIndex(descriptor, index, platform);
        }

        var manifest = await client.Content.ReadBlobAsync(descriptor.Digest, cancellationToken).ConfigureAwait(false);
        return ImageManifest.Parse(descriptor, manifest);
    }

    private static ContentDescriptor SelectFromIndex(ContentDescriptor index, byte[] json, Platform? platform)
    {
        using var document = JsonDocument.Parse(json);
        foreach (var entry in document.RootElement.GetProperty("manifests").EnumerateArray())
        {
            if (platform is null || Matches(entry, platform))
            {
                return ImageManifest.ReadDescriptor(entry);
            }
        }

        var wanted = platform is null ? "any platform" : $"{platform.Os}/{platform.Architecture}";
        throw new InvalidDataException($"index {index.Digest} has no manifest for {wanted}");
    }

    private static bool Matches(JsonElement entry, Platform platform)
    {
        if (!entry.TryGetProperty("platform", out var p))
        {
            return false;
        }

        static string Field(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetString() ?? "" : "";
        return Field(p, "os") == platform.Os
            && Field(p, "architecture") == platform.Architecture
            && (platform.Variant.Length == 0 || Field(p, "variant") == platform.Variant);
    }
}
