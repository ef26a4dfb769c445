using System.Text.Json;
using System.Text.Json.Serialization;
using Grpc.Core;

namespace Containerd.Shimkit.Oci;

/// <summary>
/// The OCI runtime specification of a container: the bundle's <c>config.json</c>. Only the fields a shim acts on
/// are modelled; unknown fields are ignored.
/// </summary>
public sealed class Spec
{
    /// <summary>The version of the OCI runtime spec the document follows.</summary>
    public string? OciVersion { get; set; }

    /// <summary>The container's init process.</summary>
    public Process? Process { get; set; }

    /// <summary>The container's root filesystem.</summary>
    public Root? Root { get; set; }

    /// <summary>The container's hostname.</summary>
    public string? Hostname { get; set; }

    /// <summary>Additional mounts, in order.</summary>
    public List<Mount>? Mounts { get; set; }

    /// <summary>Arbitrary metadata, e.g. <c>io.kubernetes.cri.sandbox-id</c>.</summary>
    public Dictionary<string, string>? Annotations { get; set; }

    /// <summary>Linux-specific configuration.</summary>
    public Linux? Linux { get; set; }

    /// <summary>Lifecycle hooks (<c>hooks</c>), kept as JSON: no shim here runs them, a host that cannot must see
    /// them to refuse them.</summary>
    public JsonElement? Hooks { get; set; }

    /// <summary>The largest <c>config.json</c> <see cref="Load"/> reads (64 MiB).</summary>
    public const int MaxBytes = 64 << 20;

    /// <summary>Reads and parses a <c>config.json</c>.</summary>
    /// <exception cref="ShimException">InvalidArgument, naming the path, when the file is missing or malformed.</exception>
    public static Spec Load(string path)
    {
        byte[] json;
        try
        {
            // containerd writes it from what the client sent: a bound keeps a giant one from taking the shim's memory.
            json = BoundedRead.File(path, MaxBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"{path}: {Reason(e)}", e);
        }
        return Parse(json, path);
    }

    /// <summary>Parses a <c>config.json</c> document; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="ShimException">InvalidArgument when the document is malformed.</exception>
    public static Spec Parse(ReadOnlySpan<byte> json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(json, SpecJsonContext.Default.Spec)
                ?? throw new ShimException(StatusCode.InvalidArgument, $"{source}: the document is null, not an OCI runtime spec");
        }
        catch (JsonException e)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"{source}: malformed OCI runtime spec: {e.Message}", e);
        }
    }

    private static string Reason(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file",
        _ => e.Message,
    };
}

/// <summary>Source-generated (NativeAOT-safe) JSON metadata for the OCI runtime spec.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true)]
[JsonSerializable(typeof(Spec))]
internal sealed partial class SpecJsonContext : JsonSerializerContext
{
}
