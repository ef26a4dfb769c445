using Containerd.Shimkit.Mounts;
using Xunit;

namespace Shim.Tests;

public class KitMountOptionsTests
{
    [Fact]
    public void Overlay_options_are_data()
    {
        var o = MountOptions.Parse(["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"]);
        Assert.Equal(0ul, o.Flags);
        Assert.Equal("index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2", o.Data);
        Assert.False(o.IsBind);
    }

    [Fact]
    public void Flags_are_set_and_cleared_in_order()
    {
        var o = MountOptions.Parse(["rbind", "ro", "nosuid", "nodev", "rw", "size=65536k"]);
        Assert.Equal(MountOptions.Bind | MountOptions.Recursive | 2ul | 4ul, o.Flags);
        Assert.Equal("size=65536k", o.Data);
        Assert.True(o.IsBind);
    }

    [Fact]
    public void Propagation_is_kept_apart()
    {
        var o = MountOptions.Parse(["bind", "rprivate", "ro"]);
        Assert.Equal(MountOptions.Bind | MountOptions.ReadOnly, o.Flags);
        Assert.Equal((1ul << 18) | MountOptions.Recursive, o.PropagationFlags);
        Assert.Equal("", o.Data);
    }
}
