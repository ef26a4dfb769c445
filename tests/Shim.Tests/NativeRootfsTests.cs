using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The constructor's C lookups and mounts inside a rootfs (<c>native/rootfs.c</c>), checked by
/// <c>tests/native/rootfs_test.c</c>: a hostile tree (absolute and climbing symlinks, a link to a host folder, a loop,
/// a dangling link where a mount point goes), with the openat2 resolver and the walk, the descriptor-based mount calls
/// and mount(2). It mounts in a private mount namespace of its own, so it needs root, as the shim does.
/// </summary>
public sealed class NativeRootfsTests
{
    [Fact]
    public async Task Lookups_and_mounts_stay_inside_the_rootfs_with_every_resolver_and_mount_api()
    {
        var native = Path.Combine(RepositoryLayout.RepoRoot, "src", "Containerd.Shim.Wasm", "native");
        var test = Path.Combine(RepositoryLayout.RepoRoot, "tests", "native", "rootfs_test.c");
        var binary = Path.Combine(Directory.CreateTempSubdirectory("rootfs-test-bin-").FullName, "rootfs_test");
        try
        {
            var build = await ProcessRunner.RunAsync("gcc",
                ["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-o", binary, test, Path.Combine(native, "rootfs.c")],
                null, TimeSpan.FromMinutes(2));
            Assert.True(build.Succeeded, build.ToString());
            var run = await ProcessRunner.RunAsync(binary, [], null, TimeSpan.FromMinutes(1));
            Assert.True(run.Succeeded, run.ToString());
            Assert.Equal("ok\n", run.Stdout);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(binary)!, recursive: true);
        }
    }
}
