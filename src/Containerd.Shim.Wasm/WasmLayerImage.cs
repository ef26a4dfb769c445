using System.Text.Json;
using Containerd.Api.Client;
using Containerd.Services.Containers.V1;
using Containerd.Services.Images.V1;
using Containerd.Types;

namespace Containerd.Shim.Wasm;

/// <summary>
/// A container whose image carries its module as OCI wasm layers rather than as a file in the rootfs: runwasi's
/// wasm-layer images (config architecture <c>wasm</c>, layers <see cref="ComponentLayer"/>) and CNCF wasm artifacts
/// (config <see cref="ArtifactConfig"/>, layers <see cref="WasmLayer"/>). The image is found through containerd's
/// gRPC API: the container record names it, the image record points at an index or manifest, and the layer blobs are
/// read from the content store.
/// </summary>
public static class WasmLayerImage
{
    /// <summary>runwasi's layer media type for a wasm module or component.</summary>
    public const string ComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

    /// <summary>The CNCF wasm artifact's layer media type.</summary>
    public const string WasmLayer = "application/wasm";

    /// <summary>The CNCF wasm artifact's config media type.</summary>
    public const string ArtifactConfig = "application/vnd.wasm.config.v0+json";

    /// <summary>The OCI annotation whose value is the module name a layer is selected by.</summary>
    public const string TitleAnnotation = "org.opencontainers.image.title";

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    /// <summary>Whether a layer of this media type is a wasm module.</summary>
    public static bool IsWasmLayer(string mediaType) => mediaType is ComponentLayer or WasmLayer;

    /// <summary>
    /// The wasm layers of the image container <paramref name="containerId"/> was made from, in manifest order; empty
    /// when the container has no image or the image is not a wasm image (then the rootfs is all there is).
    /// </summary>
    /// <exception cref="Grpc.Core.RpcException">containerd cannot be asked, or a record or blob is missing.</exception>
    public static async Task<IReadOnlyList<ContentDescriptor>> FindLayersAsync(ContainerdClient client, string containerId,
        CancellationToken ct = default) =>
        (await FindImageAsync(client, containerId, ct).ConfigureAwait(false)).Layers;

    // The layers with the image record they came from (name and target), which the precompile cache labels.
    private static async Task<(string Image, string Target, IReadOnlyList<ContentDescriptor> Layers)> FindImageAsync(
        ContainerdClient client, string containerId, CancellationToken ct)
    {
        var container = (await client.Containers.GetAsync(new GetContainerRequest { Id = containerId },
            deadline: DateTime.UtcNow + Deadline, cancellationToken: ct).ConfigureAwait(false)).Container;
        if (string.IsNullOrEmpty(container.Image))
        {
            return ("", "", []);
        }
        var image = (await client.Images.GetAsync(new GetImageRequest { Name = container.Image },
            deadline: DateTime.UtcNow + Deadline, cancellationToken: ct).ConfigureAwait(false)).Image;

        var descriptor = image.Target;
        // Nested indexes are legal; the bound keeps a malformed cycle from looping.
        for (var depth = 0; depth < 4 && OciMediaTypes.IsIndex(descriptor.MediaType); depth++)
        {
            var index = await client.Content.ReadBlobAsync(descriptor.Digest, ct).ConfigureAwait(false);
            if (SelectWasmManifest(index) is not { } next)
            {
                return (image.Name, image.Target.Digest, []);
            }
            descriptor = next;
        }
        if (!OciMediaTypes.IsManifest(descriptor.MediaType))
        {
            return (image.Name, image.Target.Digest, []);
        }

        var manifest = ImageManifest.Parse(descriptor, await client.Content.ReadBlobAsync(descriptor.Digest, ct).ConfigureAwait(false));
        var layers = manifest.Layers.Where(l => IsWasmLayer(l.MediaType)).ToList();
        if (layers.Count == 0)
        {
            return (image.Name, image.Target.Digest, []);
        }
        if (manifest.Config.MediaType == ArtifactConfig)
        {
            return (image.Name, image.Target.Digest, layers);
        }
        var config = await client.Content.ReadBlobAsync(manifest.Config.Digest, ct).ConfigureAwait(false);
        return (image.Name, image.Target.Digest, Architecture(config) == "wasm" ? layers : []);
    }

    /// <summary>
    /// Picks the layer <paramref name="name"/> (args[0] without <c>#function</c>) names: the only layer when there is
    /// one, otherwise the layer whose title is the name (a leading <c>/</c> or directory is ignored, since the module
    /// is not a file anywhere). Throws <see cref="EntrypointException"/> listing the layers when none matches.
    /// </summary>
    public static ContentDescriptor Select(IReadOnlyList<ContentDescriptor> layers, string name)
    {
        if (layers.Count == 1)
        {
            return layers[0];
        }
        var wanted = name[(name.LastIndexOf('/') + 1)..];
        var match = layers.FirstOrDefault(l => Title(l) == name) ?? layers.FirstOrDefault(l => Title(l) == wanted);
        if (match is not null)
        {
            return match;
        }
        var names = string.Join(", ", layers.Select(l => Title(l) is { } t ? t : $"(untitled {l.Digest})"));
        throw new EntrypointException(EntrypointError.NotFound, name,
            $"not in the rootfs, and the image has {layers.Count} wasm layers, none titled {wanted}: {names}");
    }

    /// <summary>
    /// Resolves a container's entrypoint from its image's wasm layers, reading the selected layer's bytes; null when
    /// the image is not a wasm image.
    /// </summary>
    public static async Task<Entrypoint?> ResolveAsync(ContainerdClient client, string containerId, string name,
        string function, CancellationToken ct = default)
    {
        var (image, target, layers) = await FindImageAsync(client, containerId, ct).ConfigureAwait(false);
        if (layers.Count == 0)
        {
            return null;
        }
        var layer = Select(layers, name);
        var bytes = await client.Content.ReadBlobAsync(layer.Digest, ct).ConfigureAwait(false);
        return new Entrypoint
        {
            Name = name,
            Function = function,
            Bytes = bytes,
            // The component layer media type is used for core modules too, so the header decides.
            Format = WasmBinary.FormatOf(bytes) ?? (name.EndsWith(".wat", StringComparison.Ordinal) ? ModuleFormat.Text : ModuleFormat.Binary),
            Cache = client.SocketPath is { } address
                ? new ContentStoreModuleCache(address, client.Namespace, image, target, layer.Digest, IndexOf(layers, layer))
                : null,
        };
    }

    private static int IndexOf(IReadOnlyList<ContentDescriptor> layers, ContentDescriptor layer)
    {
        for (var i = 0; i < layers.Count; i++)
        {
            if (ReferenceEquals(layers[i], layer))
            {
                return i;
            }
        }
        return 0;
    }

    private static string? Title(ContentDescriptor layer) =>
        layer.Annotations.TryGetValue(TitleAnnotation, out var title) && title.Length > 0 ? title : null;

    // An index of a wasm image lists the wasm platform (wasip1/wasm, wasi/wasm) or, for an artifact, often none.
    private static ContentDescriptor? SelectWasmManifest(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        if (!document.RootElement.TryGetProperty("manifests", out var manifests) || manifests.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        JsonElement? chosen = null;
        foreach (var entry in manifests.EnumerateArray())
        {
            if (!entry.TryGetProperty("platform", out var platform))
            {
                chosen ??= entry;
                continue;
            }
            if (platform.TryGetProperty("architecture", out var arch) && arch.GetString() == "wasm")
            {
                chosen = entry;
                break;
            }
        }
        if (chosen is not { } e)
        {
            return null;
        }
        return new ContentDescriptor
        {
            MediaType = e.TryGetProperty("mediaType", out var mediaType) ? mediaType.GetString() ?? "" : "",
            Digest = e.GetProperty("digest").GetString() ?? "",
            Size = e.TryGetProperty("size", out var size) ? size.GetInt64() : 0,
        };
    }

    private static string? Architecture(byte[] config)
    {
        using var document = JsonDocument.Parse(config);
        return document.RootElement.ValueKind == JsonValueKind.Object
            && document.RootElement.TryGetProperty("architecture", out var arch) ? arch.GetString() : null;
    }
}
