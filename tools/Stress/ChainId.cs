using System.Security.Cryptography;
using System.Text;

namespace Stress;

/// <summary>
/// The OCI chain id of a layer stack: the name containerd commits an unpacked layer's snapshot under, so the parent
/// of a container's snapshot is the chain id of the image's whole stack.
/// </summary>
public static class ChainId
{
    /// <summary>Computes the chain id of <paramref name="diffIds"/> (the config's rootfs.diff_ids, bottom first).</summary>
    public static string Of(IReadOnlyList<string> diffIds)
    {
        if (diffIds.Count == 0)
        {
            throw new ArgumentException("an image without layers has no chain id", nameof(diffIds));
        }
        var chain = diffIds[0];
        for (var i = 1; i < diffIds.Count; i++)
        {
            chain = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(chain + " " + diffIds[i])));
        }
        return chain;
    }
}
