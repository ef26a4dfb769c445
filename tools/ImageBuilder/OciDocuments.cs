using System.Text.Encodings.Web;
using System.Text.Json;

namespace ImageBuilder;

/// <summary>
/// Serialises the JSON documents of an image layout (configuration, manifest, index, oci-layout) compactly with a
/// fixed property order, so their digests depend only on their content.
/// </summary>
internal static class OciDocuments
{
    private static readonly JsonWriterOptions Options = new()
    {
        // The default encoder escapes '+' (as in "…manifest.v1+json"); relaxed escaping keeps media types readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public sealed record Descriptor(string MediaType, string Digest, long Size, string? Title = null);

    public static byte[] ImageConfig(ImageDefinition image, IEnumerable<string> diffIds) => Write(w =>
    {
        w.WriteString("architecture", image.Platform.Architecture);
        w.WriteString("os", image.Platform.Os);
        w.WriteStartObject("config");
        var config = image.Config;
        WriteArrayIfAny(w, "Entrypoint", config.Entrypoint);
        WriteArrayIfAny(w, "Cmd", config.Cmd);
        WriteArrayIfAny(w, "Env", config.Env);
        if (config.Labels.Count > 0)
        {
            w.WriteStartObject("Labels");
            foreach (var (key, value) in config.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                w.WriteString(key, value);
            }
            w.WriteEndObject();
        }
        if (config.WorkingDir is not null)
        {
            w.WriteString("WorkingDir", config.WorkingDir);
        }
        w.WriteEndObject();
        w.WriteStartObject("rootfs");
        w.WriteString("type", "layers");
        w.WriteStartArray("diff_ids");
        foreach (var id in diffIds)
        {
            w.WriteStringValue(id);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>The configuration of a CNCF wasm artifact (the wasm-pkg "oci-wasm" format).</summary>
    public static byte[] WasmArtifactConfig(ImageDefinition image, IEnumerable<string> layerDigests) => Write(w =>
    {
        w.WriteString("created", DeterministicTar.Epoch.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"));
        w.WriteString("architecture", image.Platform.Architecture);
        w.WriteString("os", image.Platform.Os);
        w.WriteStartArray("layerDigests");
        foreach (var digest in layerDigests)
        {
            w.WriteStringValue(digest);
        }
        w.WriteEndArray();
    });

    public static byte[] Manifest(Descriptor config, IEnumerable<Descriptor> layers) => Write(w =>
    {
        w.WriteNumber("schemaVersion", 2);
        w.WriteString("mediaType", MediaTypes.ImageManifest);
        w.WritePropertyName("config");
        WriteDescriptor(w, config);
        w.WriteStartArray("layers");
        foreach (var layer in layers)
        {
            WriteDescriptor(w, layer);
        }
        w.WriteEndArray();
    });

    public static byte[] Index(Descriptor manifest, ImageDefinition image) => Write(w =>
    {
        w.WriteNumber("schemaVersion", 2);
        w.WriteString("mediaType", MediaTypes.ImageIndex);
        w.WriteStartArray("manifests");
        w.WriteStartObject();
        w.WriteString("mediaType", manifest.MediaType);
        w.WriteString("digest", manifest.Digest);
        w.WriteNumber("size", manifest.Size);
        w.WriteStartObject("platform");
        w.WriteString("architecture", image.Platform.Architecture);
        w.WriteString("os", image.Platform.Os);
        w.WriteEndObject();
        w.WriteStartObject("annotations");
        w.WriteString(Annotations.ContainerdImageName, image.Name);
        w.WriteString(Annotations.RefName, image.Tag);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    });

    public static byte[] Layout() => Write(w => w.WriteString("imageLayoutVersion", "1.0.0"));

    private static void WriteDescriptor(Utf8JsonWriter w, Descriptor descriptor)
    {
        w.WriteStartObject();
        w.WriteString("mediaType", descriptor.MediaType);
        w.WriteString("digest", descriptor.Digest);
        w.WriteNumber("size", descriptor.Size);
        if (descriptor.Title is not null)
        {
            w.WriteStartObject("annotations");
            w.WriteString(Annotations.Title, descriptor.Title);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteArrayIfAny(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        if (values.Count == 0)
        {
            return;
        }
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }
        w.WriteEndArray();
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Options))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
