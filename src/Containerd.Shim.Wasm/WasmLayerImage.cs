using System.Text.Json;
using Containerd.Api.Client;
using Containerd.Shimkit;
using Containerd.Services.Containers.V1;
using Containerd.Services.Content.V1;
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

    /// <summary>The largest index, manifest or config read (4 MiB, containerd's own bound for manifests it fetches):
    /// the image's author chose their size.</summary>
    public const int MaxMetadataBytes = 4 << 20;

    /// <summary>Whether a layer of this media type is a wasm module.</summary>
    public static bool IsWasmLayer(string mediaType) => mediaType is ComponentLayer or WasmLayer;

    /// <summary>
    /// The wasm layers of the image container <paramref name="containerId"/> was made from, in manifest order; empty
    /// when the container has no image or the image is not a wasm image (then the rootfs is all there is).
    /// </summary>
    /// <exception cref="Grpc.Core.RpcException">containerd cannot be asked, or a record or blob is missing.</exception>
    public static async Task<IReadOnlyList<ContentDescriptor>> FindLayersAsync(ContainerdClient client, string containerId,
        CancellationToken ct = default)
    {
        var (_, _, layers, config) = await WalkAsync(client, containerId, ct).ConfigureAwait(false);
        return config is null || await IsWasmConfigAsync(config).ConfigureAwait(false) ? layers : [];
    }

    private static async Task<bool> IsWasmConfigAsync(Task<byte[]> config) =>
        Architecture(await config.ConfigureAwait(false)) == "wasm";

    // The layers with the image record they came from (name and target), which the precompile cache labels. When the
    // image's config must still say architecture wasm for the layers to count, its read is returned started, not
    // awaited (Config), so that the caller overlaps it with the layer's own reads.
    private static async Task<(string Image, string Target, IReadOnlyList<ContentDescriptor> Layers, Task<byte[]>? Config)> WalkAsync(
        ContainerdClient client, string containerId, CancellationToken ct)
    {
        var container = (await client.Containers.GetAsync(new GetContainerRequest { Id = containerId },
            deadline: DateTime.UtcNow + Deadline, cancellationToken: ct).ConfigureAwait(false)).Container;
        if (string.IsNullOrEmpty(container.Image))
        {
            return ("", "", [], null);
        }
        var image = (await client.Images.GetAsync(new GetImageRequest { Name = container.Image },
            deadline: DateTime.UtcNow + Deadline, cancellationToken: ct).ConfigureAwait(false)).Image;

        var descriptor = image.Target;
        // Nested indexes are legal; the bound keeps a malformed cycle from looping.
        for (var depth = 0; depth < 4 && OciMediaTypes.IsIndex(descriptor.MediaType); depth++)
        {
            var index = await client.Content.ReadBlobAtMostAsync(descriptor.Digest, MaxMetadataBytes, ct).ConfigureAwait(false);
            if (SelectWasmManifest(index) is not { } next)
            {
                return (image.Name, image.Target.Digest, [], null);
            }
            descriptor = next;
        }
        if (!OciMediaTypes.IsManifest(descriptor.MediaType))
        {
            return (image.Name, image.Target.Digest, [], null);
        }

        var manifest = ImageManifest.Parse(descriptor, await client.Content.ReadBlobAtMostAsync(descriptor.Digest, MaxMetadataBytes, ct).ConfigureAwait(false));
        var layers = manifest.Layers.Where(l => IsWasmLayer(l.MediaType)).ToList();
        if (layers.Count == 0)
        {
            return (image.Name, image.Target.Digest, [], null);
        }
        if (manifest.Config.MediaType == ArtifactConfig)
        {
            return (image.Name, image.Target.Digest, layers, null);
        }
        return (image.Name, image.Target.Digest, layers, client.Content.ReadBlobAtMostAsync(manifest.Config.Digest, MaxMetadataBytes, ct));
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
        // Titles are the image author's text: escaped and cut, as few as fit a readable message.
        var names = UntrustedText.List([.. layers.Select(l => Title(l) is { } t ? t : $"(untitled {l.Digest})")], itemLength: 80);
        throw new EntrypointException(EntrypointError.NotFound, name,
            $"not in the rootfs, and the image has {layers.Count} wasm layers, none titled {UntrustedText.Excerpt(wanted)}: {names}");
    }

    /// <summary>
    /// Resolves a container's entrypoint from its image's wasm layers, reading the selected layer's bytes; null when
    /// the image is not a wasm image.
    /// </summary>
    /// <param name="client">containerd's client.</param>
    /// <param name="containerId">The container whose image is read.</param>
    /// <param name="name">args[0] without <c>#function</c>.</param>
    /// <param name="function">The function to call.</param>
    /// <param name="ct">Cancels the reads.</param>
    /// <param name="shareClient">Whether the entrypoint's compiled-module cache may use <paramref name="client"/>
    /// (which must then outlive the cache) instead of connecting again, and have the layer's labels fetched along
    /// with the layer: the instance process's start path, one connection and fewer round trips in a row.</param>
    public static async Task<Entrypoint?> ResolveAsync(ContainerdClient client, string containerId, string name,
        string function, CancellationToken ct = default, bool shareClient = false)
    {
        var (image, target, layers, config) = await WalkAsync(client, containerId, ct).ConfigureAwait(false);
        if (layers.Count == 0)
        {
            return null;
        }
        // The layer (and, shared, its labels for the cache) is read while the config is: a warm start then waits for
        // one round trip here instead of three in a row. Select's error only counts for a wasm image.
        ContentDescriptor? layer = null;
        EntrypointException? notSelected = null;
        try
        {
            layer = Select(layers, name);
        }
        catch (EntrypointException e)
        {
            notSelected = e;
        }
        var limit = ModuleSizeLimit.Bytes;
        if (layer is not null && layer.Size > limit)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, name, $"layer {layer.Digest} {ModuleSizeLimit.TooLarge(layer.Size, limit)}");
        }
        // Bounded again while reading: the size in the manifest is the image author's word.
        var read = layer is null ? null : client.Content.ReadBlobAtMostAsync(layer.Digest, limit, ct);
        var labels = layer is null || !shareClient || client.SocketPath is null
            ? null
            : client.Content.InfoAsync(new InfoRequest { Digest = layer.Digest },
                deadline: DateTime.UtcNow + Deadline, cancellationToken: ct).ResponseAsync;
        if (config is not null && !await IsWasmConfigAsync(config).ConfigureAwait(false))
        {
            Observe(read);
            Observe(labels);
            return null;
        }
        if (notSelected is not null || layer is null || read is null)
        {
            throw (Exception?)notSelected ?? new InvalidOperationException("no layer selected");
        }
        byte[] bytes;
        try
        {
            bytes = await read.ConfigureAwait(false);
        }
        catch (BlobTooLargeException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, name, $"layer {layer.Digest} {ModuleSizeLimit.TooLarge(null, limit)}", e);
        }
        return new Entrypoint
        {
            Name = name,
            Function = function,
            Bytes = bytes,
            // The component layer media type is used for core modules too, so the header decides.
            Format = WasmBinary.FormatOf(bytes) ?? (name.EndsWith(".wat", StringComparison.Ordinal) ? ModuleFormat.Text : ModuleFormat.Binary),
            Cache = client.SocketPath is { } address
                ? new ContentStoreModuleCache(address, client.Namespace, image, target, layer.Digest, IndexOf(layers, layer),
                    shareClient ? client : null) { LayerInfo = labels }
                : null,
        };
    }

    // A read nobody waits for any more must not fail unobserved.
    private static void Observe(Task? task) => task?.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);

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
