using Containerd.Shimkit.Mounts;
using Xunit;

namespace Shim.Tests;

/// <summary>Real mount(2) calls (the tests run as root, as the shim does); skipped quietly where mounting is not allowed.</summary>
public class KitRootfsMountTests
{
    private static bool IsMounted(string target) =>
        File.ReadAllLines("/proc/self/mountinfo").Any(l => l.Split(' ')[4] == target);

    [Fact]
    public void Bind_read_only_and_overlay_mounts_are_made_and_undone()
    {
        var dir = Directory.CreateTempSubdirectory("kit-mount-");
        try
        {
            string P(string n) => Directory.CreateDirectory(Path.Combine(dir.FullName, n)).FullName;
            var (lower, upper, work, target) = (P("lower"), P("upper"), P("work"), P("rootfs"));
            File.WriteAllText(Path.Combine(lower, "app.wasm"), "x");
            try
            {
                RootfsMount.MountOne("bind", lower, target, ["rbind", "ro"]);
            }
            catch (Containerd.Shimkit.ShimException e) when (e.Message.Contains("Operation not permitted"))
            {
                return; // no CAP_SYS_ADMIN here
            }
            Assert.True(IsMounted(target));
            Assert.True(File.Exists(Path.Combine(target, "app.wasm")));
            Assert.Contains("Read-only", Assert.Throws<IOException>(() => File.WriteAllText(Path.Combine(target, "new"), "y")).Message);
            RootfsMount.UnmountAll(target);
            Assert.False(IsMounted(target));

            RootfsMount.MountAll([new Containerd.Types.Mount
            {
                Type = "overlay", Source = "overlay",
                Options = { $"lowerdir={lower}", $"upperdir={upper}", $"workdir={work}" },
            }], target);
            Assert.True(IsMounted(target));
            File.WriteAllText(Path.Combine(target, "new"), "y");
            Assert.True(File.Exists(Path.Combine(upper, "new")));
            RootfsMount.UnmountAll(target);
            Assert.False(IsMounted(target));
            Assert.False(RootfsMount.Unmount(target));
        }
        finally
        {
            RootfsMount.UnmountAll(Path.Combine(dir.FullName, "rootfs"));
            dir.Delete(true);
        }
    }

    [Fact]
    public void A_failed_mount_names_the_target_and_the_reason()
    {
        var dir = Directory.CreateTempSubdirectory("kit-mount-");
        try
        {
            var e = Assert.Throws<Containerd.Shimkit.ShimException>(() =>
                RootfsMount.MountOne("bind", Path.Combine(dir.FullName, "missing"), dir.FullName, ["rbind"]));
            Assert.Contains(dir.FullName, e.Message);
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
