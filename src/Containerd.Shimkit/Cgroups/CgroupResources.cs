using System.Text.Json;
using System.Text.Json.Serialization;
using Containerd.Shimkit.Oci;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>Reads the resources of an <c>UpdateTaskRequest</c>.</summary>
public static class CgroupResources
{
    /// <summary>The type URL containerd gives the runtime spec's <c>LinuxResources</c> (JSON) when it packs it.</summary>
    public const string LinuxResourcesTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    /// <summary>Unpacks <paramref name="resources"/>, which must hold the runtime spec's LinuxResources as JSON.</summary>
    /// <exception cref="ShimException">InvalidArgument for another type or malformed JSON.</exception>
    public static LinuxResources Unpack(Any resources, string id)
    {
        if (resources.TypeUrl != LinuxResourcesTypeUrl)
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"update task {id}: resources of type \"{resources.TypeUrl}\" are not supported; expected {LinuxResourcesTypeUrl}");
        }
        try
        {
            return JsonSerializer.Deserialize(resources.Value.Span, ResourcesJsonContext.Default.LinuxResources)
                ?? throw new ShimException(StatusCode.InvalidArgument, $"update task {id}: the resources are null");
        }
        catch (JsonException e)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"update task {id}: malformed LinuxResources JSON: {e.Message}", e);
        }
    }

    /// <summary>Packs <paramref name="resources"/> the way containerd does (for clients and tests).</summary>
    public static Any Pack(LinuxResources resources) => new()
    {
        TypeUrl = LinuxResourcesTypeUrl,
        Value = Google.Protobuf.ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(resources, ResourcesJsonContext.Default.LinuxResources)),
    };
}

/// <summary>Source-generated (NativeAOT-safe) JSON metadata for the runtime spec's LinuxResources.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LinuxResources))]
internal sealed partial class ResourcesJsonContext : JsonSerializerContext
{
}
