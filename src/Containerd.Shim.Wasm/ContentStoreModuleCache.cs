using System.Security.Cryptography;
using Containerd.Api.Client;
using Containerd.Services.Content.V1;
using Containerd.Services.Images.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Compiled artifacts of a wasm layer kept in containerd's content store, with runwasi's label scheme so the two
/// shims find each other's entries (and never use them: the key differs by engine build):
/// <list type="bullet">
/// <item>the layer blob gets <c>runwasi.io/precompiled/&lt;engine&gt;/&lt;hash&gt;</c> = the compiled blob's digest, and
/// a <c>containerd.io/gc.ref.content.*</c> label to it, so the compiled blob lives exactly as long as the layer;</item>
/// <item>the image's target (index or manifest) gets the same precompiled label = <c>true</c> and a
/// <c>gc.ref.content</c> label too, and so does the image record (<c>ctr images ls</c> shows it);</item>
/// <item>the compiled blob gets <c>runwasi.io/precompiled/&lt;engine&gt;/&lt;hash&gt;/original</c> = the layer digest.</item>
/// </list>
/// The blob is written under a lease that ends once the labels hold it, so garbage collection never sees it
/// unreferenced. Unlike runwasi, the gc.ref keys carry the engine and hash
/// (<c>containerd.io/gc.ref.content.precompile.&lt;engine&gt;.&lt;hash&gt;[.&lt;layer index&gt;]</c>): two engine builds that run
/// the same image then each keep their own artifact instead of releasing each other's.
/// </summary>
/// <param name="containerdAddress">containerd's gRPC socket.</param>
/// <param name="namespace">The image's containerd namespace.</param>
/// <param name="imageName">The image record's name.</param>
/// <param name="imageTarget">The digest of the image's target (index or manifest).</param>
/// <param name="layerDigest">The wasm layer's digest.</param>
/// <param name="layerIndex">The layer's position among the image's wasm layers.</param>
/// <param name="sharedClient">A connection to containerd to use instead of opening one per operation (the instance
/// process lends the one it found the layer with); the lender keeps it open as long as this cache is used.</param>
internal sealed class ContentStoreModuleCache(string containerdAddress, string @namespace, string imageName, string imageTarget,
    string layerDigest, int layerIndex, ContainerdClient? sharedClient = null) : ICompiledModuleCache
{
    private Task<InfoResponse>? _layerInfo;

    /// <summary>The layer's record (its labels), already asked for; the first <see cref="Find"/> uses it instead of
    /// asking again.</summary>
    public Task<InfoResponse>? LayerInfo
    {
        get => _layerInfo;
        init => _layerInfo = value;
    }

    /// <summary>runwasi's prefix of the label that points from a layer to its compiled blob.</summary>
    public const string LabelPrefix = "runwasi.io/precompiled";

    /// <summary>containerd's prefix of labels that keep the content they name alive.</summary>
    public const string GcRefPrefix = "containerd.io/gc.ref.content.precompile";

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    // Covers a writer that dies between its write and its labels; the lease is deleted as soon as they are set.
    private static readonly TimeSpan LeaseExpiry = TimeSpan.FromMinutes(10);

    /// <inheritdoc/>
    public string Description => $"containerd content store ({layerDigest})";

    /// <summary>The label a layer's compiled blob is found by.</summary>
    public static string Label(string engine, string compatibilityHash) => $"{LabelPrefix}/{engine}/{compatibilityHash}";

    /// <summary>The gc.ref label of the layer (without index) or of the image (with one).</summary>
    public static string GcRef(string engine, string compatibilityHash, int? layerIndex = null) =>
        layerIndex is { } i ? $"{GcRefPrefix}.{engine}.{compatibilityHash}.{i}" : $"{GcRefPrefix}.{engine}.{compatibilityHash}";

    /// <inheritdoc/>
    public CompiledArtifact? Find(string engine, string compatibilityHash, out string? problem)
    {
        problem = null;
        using var borrowed = Borrow();
        var client = borrowed.Client;
        var info = Interlocked.Exchange(ref _layerInfo, null) is { } asked
            ? asked.GetAwaiter().GetResult().Info
            : Info(client, layerDigest);
        if (!info.Labels.TryGetValue(Label(engine, compatibilityHash), out var digest))
        {
            return null;
        }
        byte[] bytes;
        try
        {
            bytes = client.Content.ReadBlobAsync(digest).GetAwaiter().GetResult();
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            problem = $"compiled blob {digest} of layer {layerDigest} is gone from the content store";
            return null;
        }
        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != digest)
        {
            problem = $"compiled blob {digest} of layer {layerDigest} is corrupt (its content has digest {actual})";
            // Removed so that storing the recompiled artifact, likely the very same digest, writes it afresh.
            DeleteIfOurs(client, digest, Label(engine, compatibilityHash));
            return null;
        }
        return new CompiledArtifact(digest, null, bytes);
    }

    /// <inheritdoc/>
    public void Store(string engine, string compatibilityHash, byte[] artifact) =>
        StoreAsync(engine, compatibilityHash, artifact).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public void Discard(string engine, string compatibilityHash, CompiledArtifact artifact)
    {
        using var borrowed = Borrow();
        DeleteIfOurs(borrowed.Client, artifact.Digest, Label(engine, compatibilityHash));
    }

    private async Task StoreAsync(string engine, string compatibilityHash, byte[] artifact)
    {
        var label = Label(engine, compatibilityHash);
        using var borrowed = Borrow();
        var client = borrowed.Client;
        await using var lease = await ContainerdLease.CreateAsync(client, expiresAfter: LeaseExpiry).ConfigureAwait(false);
        var digest = await lease.Client.Content.WriteBlobAsync(artifact,
            [new($"{label}/original", layerDigest)]).ConfigureAwait(false);

        await client.Content.UpdateLabelsAsync(layerDigest, new Dictionary<string, string>
        {
            [label] = digest,
            [GcRef(engine, compatibilityHash)] = digest,
        }).ConfigureAwait(false);
        await client.Content.UpdateLabelsAsync(imageTarget, new Dictionary<string, string>
        {
            [label] = "true",
            [GcRef(engine, compatibilityHash, layerIndex)] = digest,
        }).ConfigureAwait(false);

        try
        {
            // The whole record goes back, not just the name: containerd 1.7 dereferences the target of an update
            // request even when the mask names only a label, and crashes on a missing one.
            var image = (await client.Images.GetAsync(new GetImageRequest { Name = imageName },
                deadline: DateTime.UtcNow + Deadline).ConfigureAwait(false)).Image;
            image.Labels[label] = "true";
            var mask = new FieldMask();
            mask.Paths.Add("labels." + label);
            await client.Images.UpdateAsync(new UpdateImageRequest { Image = image, UpdateMask = mask },
                deadline: DateTime.UtcNow + Deadline).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            // The image was removed while we compiled; its content goes with it, and so will the blob.
        }
    }

    private Borrowed Borrow() => sharedClient is not null
        ? new Borrowed(sharedClient, owned: false)
        : new Borrowed(new ContainerdClient(containerdAddress, @namespace), owned: true);

    // The lent client, or one of our own that is closed after the operation.
    private readonly struct Borrowed(ContainerdClient connection, bool owned) : IDisposable
    {
        public ContainerdClient Client => connection;

        public void Dispose()
        {
            if (owned)
            {
                connection.Dispose();
            }
        }
    }

    private static Info Info(ContainerdClient client, string digest) =>
        client.Content.Info(new InfoRequest { Digest = digest }, deadline: DateTime.UtcNow + Deadline).Info;

    // Only a compiled blob of this engine and hash is deleted: a label may have been pointed at anyone's content.
    private void DeleteIfOurs(ContainerdClient client, string digest, string label)
    {
        try
        {
            // Layers whose code compiles alike share one blob, so the original may name another layer.
            if (!Info(client, digest).Labels.ContainsKey($"{label}/original"))
            {
                return;
            }
            client.Content.Delete(new DeleteContentRequest { Digest = digest }, deadline: DateTime.UtcNow + Deadline);
            // Deleting drops the record only; the file stays until the next garbage collection, and a write of the
            // same digest before then would adopt the corrupt file again. Ending a lease with sync collects now.
            var lease = client.Leases.Create(new Containerd.Services.Leases.V1.CreateRequest { Id = $"precompile-gc-{Guid.NewGuid():N}" },
                deadline: DateTime.UtcNow + Deadline).Lease;
            client.Leases.Delete(new Containerd.Services.Leases.V1.DeleteRequest { Id = lease.Id, Sync = true },
                deadline: DateTime.UtcNow + Deadline);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
    }
}
