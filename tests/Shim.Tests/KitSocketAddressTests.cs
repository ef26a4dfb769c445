using Containerd.Shimkit;
using Xunit;

namespace Shim.Tests;

public class KitSocketAddressTests
{
    // Expected values: printf '%s' "<filepath.Join(address, ns, id)>" | sha256sum
    [Fact]
    public void Matches_containerds_derivation()
    {
        Assert.Equal("unix:///run/containerd/s/3272bea47699920557fd8e0ecc9b0fbad8bbcd98de96f30b484690cc72ca67be",
            SocketAddress.Compute("/run/containerd/containerd.sock", "default", "mycontainer"));
    }

    [Fact]
    public void Joins_like_go_filepath_join()
    {
        // filepath.Join cleans: doubled and trailing slashes and '.' disappear.
        Assert.Equal("unix:///run/containerd/s/41b7c9b52cb61a2525cba0b81c85deef8ff9b04fda62ea183ac55836280c3617",
            SocketAddress.Compute("/tmp//ctr/./containerd.sock/", "k8s.io", "pod-sandbox"));
    }

    [Theory]
    [InlineData("/a/b/../c", "/a/c")]
    [InlineData("a//b/", "a/b")]
    [InlineData("/../x", "/x")]
    [InlineData("../x/..", "..")]
    [InlineData("", ".")]
    public void Go_clean(string input, string expected) => Assert.Equal(expected, GoPath.Clean(input));

    [Fact]
    public void Path_of_a_unix_address()
    {
        Assert.Equal("/run/containerd/s/abc", SocketAddress.ToPath("unix:///run/containerd/s/abc"));
        Assert.Equal("/x.sock", SocketAddress.ToPath("/x.sock"));
    }
}
