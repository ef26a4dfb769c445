using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>The preopen annotation, parsed and validated against a rootfs on disk.</summary>
public sealed class WasiPreopensTests : IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("preopens-").FullName;

    public WasiPreopensTests()
    {
        Directory.CreateDirectory(Path.Combine(_rootfs, "data"));
        File.WriteAllText(Path.Combine(_rootfs, "file"), "x");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "host"), "/");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "up"), "../../..");
    }

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    private IReadOnlyList<WasiPreopen> Parse(string? value) => WasiPreopens.FromSpec(
        new Spec { Annotations = value is null ? null : new() { [WasiPreopens.Annotation] = value } }, _rootfs);

    // Each preopen is a descriptor the engine opens as /proc/self/fd/N: where it leads, and how it is offered.
    private static (string Target, string Guest, bool Writable)[] Opened(IReadOnlyList<WasiPreopen> preopens)
    {
        var opened = preopens.Select(p => (new FileInfo(p.HostPath).LinkTarget ?? "", p.GuestPath, p.Writable)).ToArray();
        Assert.All(preopens, p => Assert.StartsWith("/proc/self/fd/", p.HostPath));
        WasiPreopens.Close(preopens);
        return opened;
    }

    [Fact]
    public void Default_is_the_rootfs_read_write() =>
        Assert.Equal([(_rootfs, "/", true)], Opened(Parse(null)));

    [Fact]
    public void None_means_no_filesystem() => Assert.Empty(Parse("none"));

    [Fact]
    public void Read_only_root_with_a_writable_data_folder() =>
        Assert.Equal([(_rootfs, "/", false), (_rootfs + "/data", "/data", true)], Opened(Parse("/:ro, /data/:rw")));

    [Theory]
    [InlineData("/host:ro")] // an absolute symlink to the host's /
    [InlineData("/up:ro")]   // a relative one climbing out: clamped at the root, as the kernel does inside the container
    public void A_symlink_out_of_the_rootfs_resolves_inside_it(string value) =>
        Assert.Equal(_rootfs, Opened(Parse(value))[0].Target);

    [Fact]
    public void Inside_the_rootfs_the_engine_opens_the_guest_paths()
    {
        var inside = WasiPreopens.InsideRootfs(Parse("/:ro,/data:rw"));
        Assert.Equal([new WasiPreopen("/", "/", false), new WasiPreopen("/data", "/data", true)], inside);
    }

    [Theory]
    [InlineData("/data:rx", "unknown permission \"rx\" (use ro or rw)")]
    [InlineData("/data", "is not <path>:<ro|rw>")]
    [InlineData("data:rw", "\"data\" is outside the rootfs")]
    [InlineData("/../etc:ro", "\"/../etc\" is outside the rootfs")]
    [InlineData("/file:ro", "/file is not a directory in the container")]
    [InlineData("/missing:ro", "/missing: no such file in the rootfs")]
    [InlineData("/data:ro,/data:rw", "/data is listed twice")]
    [InlineData("none,/data:rw", "entry \"none\" is not <path>:<ro|rw>")]
    public void Bad_values_fail_naming_the_annotation_and_the_reason(string value, string reason)
    {
        var e = Assert.Throws<ShimException>(() => Parse(value));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains($"annotation {WasiPreopens.Annotation}=", e.Message);
        Assert.Contains(reason, e.Message);
    }
}
