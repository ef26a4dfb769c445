using System.Security.Cryptography;
using Containerd.Shimkit;
using Xunit;

namespace Shim.Tests;

/// <summary>The shim's managed SHA-256 (kept so the shim never loads OpenSSL) agrees with the platform's.</summary>
public class KitSha256Tests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(55)] // the longest input whose padding fits one block
    [InlineData(56)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(119)]
    [InlineData(120)]
    [InlineData(1000)]
    public void Agrees_with_the_platform_sha256(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);

        Assert.Equal(SHA256.HashData(data), Sha256.Hash(data));
    }
}
