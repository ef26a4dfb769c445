using System.Security.Cryptography;

namespace ImageBuilder;

/// <summary>Content digests in the OCI <c>algorithm:hex</c> form.</summary>
public static class Digest
{
    /// <summary>The <c>sha256:…</c> digest of <paramref name="data"/>.</summary>
    public static string Sha256(ReadOnlySpan<byte> data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The hex part of a digest, which names the blob under <c>blobs/sha256/</c>.</summary>
    public static string Hex(string digest) => digest[(digest.IndexOf(':') + 1)..];
}
