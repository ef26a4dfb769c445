using System.Security.Cryptography;
using Containerd.Services.Content.V1;
using ContentApi = Containerd.Services.Content.V1.Content;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Api.Client;

/// <summary>
/// Whole-blob reads and writes over containerd's chunked content protocol.
/// </summary>
public static class ContentStoreExtensions
{
    /// <summary>Bytes sent per WRITE message; well under containerd's message size limit.</summary>
    public const int WriteChunkSize = 1024 * 1024;

    /// <summary>How long a write waits for an ingest ref another writer holds before giving up with <c>Unavailable</c>.</summary>
    public static readonly TimeSpan LockedRefPatience = TimeSpan.FromSeconds(3);

    /// <summary>Reads the blob with <paramref name="digest"/> completely into memory.</summary>
    /// <exception cref="RpcException">With <see cref="StatusCode.NotFound"/> when the blob is not in the store.</exception>
    /// <exception cref="InvalidDataException">When containerd returns chunks out of order.</exception>
    public static Task<byte[]> ReadBlobAsync(this ContentApi.ContentClient content, string digest, CancellationToken cancellationToken = default) =>
        ReadBlobAtMostAsync(content, digest, Array.MaxLength, cancellationToken);

    /// <summary>Reads the blob with <paramref name="digest"/> into memory, stopping as soon as it has more than
    /// <paramref name="maxBytes"/> bytes: for blobs whose size a tenant chose (an image's manifest, config or layer),
    /// whatever the descriptor that led here claimed.</summary>
    /// <exception cref="RpcException">With <see cref="StatusCode.NotFound"/> when the blob is not in the store.</exception>
    /// <exception cref="BlobTooLargeException">The blob has more than <paramref name="maxBytes"/> bytes.</exception>
    /// <exception cref="InvalidDataException">When containerd returns chunks out of order.</exception>
    public static async Task<byte[]> ReadBlobAtMostAsync(this ContentApi.ContentClient content, string digest, int maxBytes,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentException.ThrowIfNullOrEmpty(digest);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        using var call = content.Read(new ReadContentRequest { Digest = digest }, cancellationToken: cancellationToken);
        using var buffer = new MemoryStream();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            // The protocol carries offsets so a reader can detect a gap instead of silently corrupting the blob.
            if (chunk.Offset != buffer.Length)
            {
                throw new InvalidDataException($"content {digest}: chunk at offset {chunk.Offset}, expected {buffer.Length}");
            }

            if (buffer.Length + chunk.Data.Length > maxBytes)
            {
                throw new BlobTooLargeException(digest, maxBytes);
            }
            chunk.Data.WriteTo(buffer);
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Writes <paramref name="data"/> as one blob and commits it with <paramref name="labels"/>.
    /// If the blob already exists, its labels are updated instead.
    /// </summary>
    /// <param name="content">The content client; use a lease view of the client to protect the blob from garbage collection.</param>
    /// <param name="data">The blob.</param>
    /// <param name="labels">Labels to store on the blob, e.g. <c>containerd.io/gc.ref.content.*</c>.</param>
    /// <param name="reference">The ingest ref; concurrent writers of the same ref are refused by containerd. <c>null</c> picks a unique one.</param>
    /// <param name="cancellationToken">Cancels the write; a failed or cancelled ingest is aborted.</param>
    /// <returns>The blob's digest (<c>sha256:…</c>).</returns>
    public static async Task<string> WriteBlobAsync(
        this ContentApi.ContentClient content,
        ReadOnlyMemory<byte> data,
        IEnumerable<KeyValuePair<string, string>>? labels = null,
        string? reference = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data.Span));
        var labelMap = labels?.ToDictionary(l => l.Key, l => l.Value) ?? [];
        reference ??= $"dotnet-{Guid.NewGuid():N}";

        try
        {
            await WriteWhenUnlockedAsync(content, reference, digest, data, labelMap, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            if (labelMap.Count > 0)
            {
                await UpdateLabelsAsync(content, digest, labelMap, cancellationToken).ConfigureAwait(false);
            }
        }

        return digest;
    }

    /// <summary>Sets (adds or replaces) the given labels on an existing blob, leaving its other labels alone.</summary>
    public static async Task<Info> UpdateLabelsAsync(
        this ContentApi.ContentClient content,
        string digest,
        IReadOnlyDictionary<string, string> labels,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(labels);
        var info = new Info { Digest = digest };
        var mask = new FieldMask();
        foreach (var (key, value) in labels)
        {
            info.Labels[key] = value;
            mask.Paths.Add("labels." + key);
        }

        var response = await content.UpdateAsync(new UpdateRequest { Info = info, UpdateMask = mask }, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.Info;
    }

    // containerd refuses a ref another writer holds with Unavailable ("ref ... locked"), and keeps it
    // locked for a moment after that writer's stream ends, so wait a little as containerd's own client does.
    private static async Task WriteWhenUnlockedAsync(
        ContentApi.ContentClient content,
        string reference,
        string digest,
        ReadOnlyMemory<byte> data,
        Dictionary<string, string> labels,
        CancellationToken cancellationToken = default)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var delay = TimeSpan.FromMilliseconds(16);
        while (true)
        {
            try
            {
                await WriteIngestAsync(content, reference, digest, data, labels, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && waited.Elapsed < LockedRefPatience)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
            }
        }
    }

    private static async Task WriteIngestAsync(
        ContentApi.ContentClient content,
        string reference,
        string digest,
        ReadOnlyMemory<byte> data,
        Dictionary<string, string> labels,
        CancellationToken cancellationToken = default)
    {
        using var call = content.Write(cancellationToken: cancellationToken);
        var total = data.Length;

        // STAT opens (or resumes) the ingest; containerd answers with how much it already has.
        var status = await ExchangeAsync(call, new WriteContentRequest
        {
            Action = WriteAction.Stat,
            Ref = reference,
            Total = total,
            Expected = digest,
        }, cancellationToken).ConfigureAwait(false);

        // From here the ingest is ours. A half-written one would linger under this ref (containerd keeps
        // it for resuming), so abort it on any failure. Not before: a STAT refused because another writer
        // holds the ref must not abort that writer's ingest.
        try
        {
            var offset = status.Offset;
            if (offset > total)
            {
                throw new InvalidDataException($"ingest {reference} already holds {offset} bytes, more than the blob's {total}");
            }

            while (offset < total)
            {
                var length = (int)Math.Min(WriteChunkSize, total - offset);
                var written = await ExchangeAsync(call, new WriteContentRequest
                {
                    Action = WriteAction.Write,
                    Ref = reference,
                    Offset = offset,
                    Data = ByteString.CopyFrom(data.Span.Slice((int)offset, length)),
                }, cancellationToken).ConfigureAwait(false);
                offset = written.Offset;
            }

            var commit = new WriteContentRequest
            {
                Action = WriteAction.Commit,
                Ref = reference,
                Offset = offset,
                Total = total,
                Expected = digest,
            };
            commit.Labels.Add(labels);
            var committed = await ExchangeAsync(call, commit, cancellationToken).ConfigureAwait(false);
            if (!string.Equals(committed.Digest, digest, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"ingest {reference} committed as {committed.Digest}, expected {digest}");
            }
        }
        catch
        {
            // End our stream first so containerd releases its writer on the ref before the abort.
            call.Dispose();
            await AbortQuietlyAsync(content, reference).ConfigureAwait(false);
            throw;
        }

        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
    }

    // containerd answers every request on the write stream with exactly one response.
    private static async Task<WriteContentResponse> ExchangeAsync(
        AsyncDuplexStreamingCall<WriteContentRequest, WriteContentResponse> call,
        WriteContentRequest request,
        CancellationToken cancellationToken = default)
    {
        await call.RequestStream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidDataException($"containerd closed the write stream for {request.Ref} after {request.Action}");
        }

        return call.ResponseStream.Current;
    }

    private static async Task AbortQuietlyAsync(ContentApi.ContentClient content, string reference)
    {
        try
        {
            await content.AbortAsync(new AbortRequest { Ref = reference }).ConfigureAwait(false);
        }
        catch (RpcException)
        {
            // Best effort: the ingest may never have been opened.
        }
    }
}
