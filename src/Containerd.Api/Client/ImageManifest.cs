using System.Text.Json;
using Containerd.Types;

namespace Containerd.Api.Client;

/// <summary>
/// The parts of an image manifest a runtime needs: the config blob and the layers, as
/// content-store descriptors, plus the manifest's own descriptor.
/// </summary>
/// <param name="Descriptor">The manifest blob itself.</param>
/// <param name="Config">The image config blob (or, for a wasm artifact, its config).</param>
/// <param name="Layers">The layers in manifest order.</param>
/// <param name="Annotations">The manifest's annotations.</param>
public sealed record ImageManifest(
    ContentDescriptor Descriptor,
    ContentDescriptor Config,
    IReadOnlyList<ContentDescriptor> Layers,
    IReadOnlyDictionary<string, string> Annotations)
{
    /// <summary>Parses a manifest blob (OCI or Docker schema 2).</summary>
    /// <param name="descriptor">Where the blob came from.</param>
    /// <param name="json">The blob.</param>
    /// <exception cref="InvalidDataException">The blob is not an image manifest.</exception>
    public static ImageManifest Parse(ContentDescriptor descriptor, ReadOnlySpan<byte> json)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        try
        {
            using var document = JsonDocument.Parse(json.ToArray());
            var root = document.RootElement;
            if (!root.TryGetProperty("config", out var config) || !root.TryGetProperty("layers", out var layers))
            {
                throw new InvalidDataException($"{descriptor.Digest} is not an image manifest: it has no config or layers");
            }

            return new ImageManifest(
                descriptor,
                ReadDescriptor(config),
                layers.EnumerateArray().Select(ReadDescriptor).ToList(),
                ReadAnnotations(root));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{descriptor.Digest} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Reads one OCI descriptor object (mediaType, digest, size, annotations).</summary>
    internal static ContentDescriptor ReadDescriptor(JsonElement element)
    {
        var descriptor = new ContentDescriptor
        {
            MediaType = element.TryGetProperty("mediaType", out var mediaType) ? mediaType.GetString() ?? "" : "",
            Digest = element.GetProperty("digest").GetString() ?? "",
            Size = element.GetProperty("size").GetInt64(),
        };
        descriptor.Annotations.Add(ReadAnnotations(element));
        return descriptor;
    }

    private static Dictionary<string, string> ReadAnnotations(JsonElement element)
    {
        var annotations = new Dictionary<string, string>();
        if (element.TryGetProperty("annotations", out var map) && map.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in map.EnumerateObject())
            {
                annotations[property.Name] = property.Value.GetString() ?? "";
            }
        }

        return annotations;
    }
}
