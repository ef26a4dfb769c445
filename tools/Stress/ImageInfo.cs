using System.Text.Json;
using Containerd.Api.Client;
using Containerd.Types;
using Grpc.Core;

namespace Stress;

/// <summary>What the tool needs from an image: the parent snapshot and the default process.</summary>
/// <param name="Name">The image name.</param>
/// <param name="ChainId">The chain id its unpacked snapshot is committed under.</param>
/// <param name="Args">Entrypoint followed by cmd.</param>
/// <param name="Env">The config's environment.</param>
/// <param name="WorkingDir">The config's working folder, "/" when unset.</param>
public sealed record ImageInfo(string Name, string ChainId, IReadOnlyList<string> Args, IReadOnlyList<string> Env, string WorkingDir)
{
    /// <summary>Reads the image's manifest and config for linux/amd64 and checks it is unpacked into the snapshotter.</summary>
    public static async Task<ImageInfo> LoadAsync(ContainerdClient client, string name, string snapshotter, CancellationToken cancellationToken)
    {
        ImageManifest manifest;
        try
        {
            manifest = await client.GetImageManifestAsync(name, new Platform { Os = "linux", Architecture = "amd64" }, cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new StressException($"image {name} is not in namespace {client.Namespace}: pull or import it first (ctr -n {client.Namespace} images import …)", e);
        }
        using var config = JsonDocument.Parse(await client.Content.ReadBlobAsync(manifest.Config.Digest, cancellationToken));
        var root = config.RootElement;
        var diffIds = root.TryGetProperty("rootfs", out var rootfs) && rootfs.TryGetProperty("diff_ids", out var ids)
            ? ids.EnumerateArray().Select(d => d.GetString() ?? "").ToList()
            : [];
        if (diffIds.Count == 0)
        {
            throw new StressException($"image {name} has no rootfs layers to make a snapshot from");
        }
        var chainId = Stress.ChainId.Of(diffIds);
        try
        {
            await client.Snapshots.StatAsync(new() { Snapshotter = snapshotter, Key = chainId }, cancellationToken: cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new StressException($"image {name} is not unpacked into snapshotter {snapshotter} (no snapshot {chainId}): import or pull it with unpacking", e);
        }
        var process = root.TryGetProperty("config", out var c) && c.ValueKind == JsonValueKind.Object ? c : default;
        return new ImageInfo(
            name,
            chainId,
            [.. Strings(process, "Entrypoint"), .. Strings(process, "Cmd")],
            Strings(process, "Env"),
            process.ValueKind == JsonValueKind.Object && process.TryGetProperty("WorkingDir", out var w) && w.GetString() is { Length: > 0 } dir ? dir : "/");
    }

    private static List<string> Strings(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray().Select(v => v.GetString() ?? "").ToList()
            : [];
}
