using Containerd.Shimkit;
using Xunit;

namespace Shim.Tests;

public class KitShimFlagsTests
{
    [Fact]
    public void Parses_containerds_start_command_line()
    {
        var f = ShimFlags.Parse(["-namespace", "default", "-address", "/run/containerd/containerd.sock", "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"]);
        Assert.Equal("default", f.Namespace);
        Assert.Equal("/run/containerd/containerd.sock", f.Address);
        Assert.Equal("/usr/bin/containerd", f.PublishBinary);
        Assert.Equal("c1", f.Id);
        Assert.True(f.Debug);
        Assert.Equal("start", f.Action);
        Assert.Equal(["-namespace", "default", "-id", "c1", "-address", "/run/containerd/containerd.sock", "-publish-binary", "/usr/bin/containerd", "-debug"], f.ServeArgs());
    }

    [Fact]
    public void Accepts_go_flag_spellings_and_keeps_unknown_flags()
    {
        var f = ShimFlags.Parse(["--namespace=k8s.io", "-id=x", "-debug=false", "-bundle", "/b", "-future-flag=1", "delete"]);
        Assert.Equal("k8s.io", f.Namespace);
        Assert.Equal("x", f.Id);
        Assert.False(f.Debug);
        Assert.Equal("/b", f.Bundle);
        Assert.Equal("delete", f.Action);
        Assert.Contains("-future-flag=1", f.ServeArgs());
    }

    [Fact]
    public void Version_and_info_flags()
    {
        Assert.True(ShimFlags.Parse(["-v"]).Version);
        Assert.True(ShimFlags.Parse(["-info"]).Info);
        Assert.Equal("", ShimFlags.Parse(["-id", "a"]).Action);
        Assert.Throws<ArgumentException>(() => ShimFlags.Parse(["-id"]));
    }

    [Fact]
    public void Version_text_names_runtime_version_and_revision()
    {
        var text = ShimMain.VersionText(new ShimInfo("io.containerd.wasmtime.v1", "0.1.0", "abc123"));
        Assert.EndsWith(":\n  Runtime: io.containerd.wasmtime.v1\n  Version: 0.1.0\n  Revision: abc123\n", text);
    }

    [Fact]
    public void Grouping_id_is_the_sandbox_annotation_else_the_id()
    {
        using var pod = new TempBundle("{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sandbox1\"}}");
        Assert.Equal("sandbox1", ShimStart.GroupingId(pod.Path, "c1"));
        using var plain = new TempBundle();
        Assert.Equal("c1", ShimStart.GroupingId(plain.Path, "c1"));
        using var none = new TempBundle(configJson: null);
        Assert.Equal("c1", ShimStart.GroupingId(none.Path, "c1"));
    }
}
