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

    [Fact]
    public void Default_is_the_rootfs_read_write() =>
        Assert.Equal([new WasiPreopen(_rootfs, "/", true)], Parse(null));

    [Fact]
    public void None_means_no_filesystem() => Assert.Empty(Parse("none"));

    [Fact]
    public void Read_only_root_with_a_writable_data_folder() =>
        Assert.Equal([new WasiPreopen(_rootfs + "/", "/", false), new WasiPreopen(_rootfs + "/data", "/data", true)],
            Parse("/:ro, /data/:rw"));

    [Fact]
    public void An_absolute_symlink_resolves_inside_the_rootfs() =>
        Assert.Equal(_rootfs + "/", Parse("/host:ro")[0].HostPath);

    [Theory]
    [InlineData("/data:rx", "unknown permission \"rx\" (use ro or rw)")]
    [InlineData("/data", "is not <path>:<ro|rw>")]
    [InlineData("data:rw", "\"data\" is outside the rootfs")]
    [InlineData("/../etc:ro", "\"/../etc\" is outside the rootfs")]
    [InlineData("/up:ro", "/up leads outside the rootfs")]
    [InlineData("/file:ro", "/file is not a directory in the container")]
    [InlineData("/missing:ro", "/missing is not a directory in the container")]
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
