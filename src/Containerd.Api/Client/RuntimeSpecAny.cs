using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Containerd.Api.Client;

/// <summary>
/// Wraps OCI runtime-spec JSON documents in the <see cref="Any"/> form containerd
/// and its shims expect: the type URLs containerd registers for the Go spec types,
/// with the JSON bytes as the value.
/// </summary>
public static class RuntimeSpecAny
{
    /// <summary>The type URL prefix containerd registers runtime-spec types under (major version 1).</summary>
    public const string TypeUrlPrefix = "types.containerd.io/opencontainers/runtime-spec/1/";

    /// <summary>Type URL of a whole container spec (<c>config.json</c>).</summary>
    public const string SpecTypeUrl = TypeUrlPrefix + "Spec";

    /// <summary>Type URL of a process spec, as used by Exec.</summary>
    public const string ProcessTypeUrl = TypeUrlPrefix + "Process";

    /// <summary>Type URL of Linux resources, as used by Tasks.Update.</summary>
    public const string LinuxResourcesTypeUrl = TypeUrlPrefix + "LinuxResources";

    /// <summary>A container spec for Containers.Create.</summary>
    public static Any Spec(string json) => Wrap(SpecTypeUrl, json);

    /// <summary>A process spec for Tasks.Exec.</summary>
    public static Any Process(string json) => Wrap(ProcessTypeUrl, json);

    /// <summary>Resources for Tasks.Update, e.g. <c>{"pids":{"limit":64}}</c>.</summary>
    public static Any LinuxResources(string json) => Wrap(LinuxResourcesTypeUrl, json);

    private static Any Wrap(string typeUrl, string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return new Any { TypeUrl = typeUrl, Value = ByteString.CopyFromUtf8(json) };
    }
}
