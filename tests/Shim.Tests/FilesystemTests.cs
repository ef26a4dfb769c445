using Containerd.Shim.Wasm;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// What the guest sees of the filesystem: its rootfs as <c>/</c> and nothing else (hostile symlinks and <c>..</c>
/// included), OCI bind mounts (folders and single files, ro or rw) at their destination, the preopen annotation.
/// Bind mounts live in the instance's private mount namespace: none is left on the host.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class FilesystemTests(WasmShimFixture fx) : IDisposable
{
    private const string Demo = "/wasi-demo-app.wasm";
    private readonly string _host = Directory.CreateTempSubdirectory("fs-tests-").FullName;

    public void Dispose() => Directory.Delete(_host, recursive: true);

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Read_only_rbind_folder_is_readable_and_not_writable()
    {
        File.WriteAllText(Path.Combine(_host, "hello.txt"), "hello from the host\n");
        var mount = $"type=bind,src={_host},dst=/data,options=rbind:ro";

        var read = await RunAsync(["--mount", mount], "cat", "/data/hello.txt");
        Assert.True(read.Succeeded, read.ToString());
        Assert.Equal("hello from the host\n", read.Stdout);

        var write = await RunAsync(["--mount", mount], "write", "/data/new.txt", "x");
        Assert.Equal(1, write.ExitCode);
        Assert.Contains("write: cannot open /data/new.txt", write.Stderr);
        Assert.False(File.Exists(Path.Combine(_host, "new.txt")));
        AssertNoMountLeft();
    }

    [Fact]
    public async Task Read_write_bind_folder_takes_the_guest_s_writes()
    {
        var write = await RunAsync(["--mount", $"type=bind,src={_host},dst=/out,options=rbind:rw"], "write", "/out/result.txt", "written");
        Assert.True(write.Succeeded, write.ToString());
        Assert.Equal("written", File.ReadAllText(Path.Combine(_host, "result.txt")));
        AssertNoMountLeft();
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Single_file_bind_mount_is_readable_at_its_destination()
    {
        var hosts = Path.Combine(_host, "hosts");
        File.WriteAllText(hosts, "10.0.0.7 wasm-box\n");
        var result = await RunAsync(["--mount", $"type=bind,src={hosts},dst=/etc/hosts,options=rbind:ro"], "cat", "/etc/hosts");
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("10.0.0.7 wasm-box\n", result.Stdout);
        AssertNoMountLeft();
    }

    [Fact]
    public async Task Read_only_rootfs_refuses_writes()
    {
        var result = await RunAsync(["--read-only"], "write", "/new.txt", "x");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("write: cannot open /new.txt", result.Stderr);
    }

    [Theory]
    [InlineData("/root/etc/shadow")]        // symlink to the host's /
    [InlineData("/escape/etc/shadow")]      // relative symlink climbing out
    [InlineData("../../../../etc/shadow")]
    [InlineData("/proc/1/environ")]
    [InlineData("/shadow")]                 // symlink to an absolute host file
    public async Task Hostile_rootfs_contents_do_not_reach_the_host(string path)
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "hostile")).Args("cat", path);
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "root"), "/");
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "escape"), "../../../../../..");
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "shadow"), "/etc/shadow");
        var result = await c.RunAsync();
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"cat: cannot open {path}", result.Stderr);
        Assert.DoesNotContain("root:", result.Stdout);
    }

    [Fact]
    public async Task The_guest_sees_only_its_rootfs_as_root()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "ls")).Args("ls", "/");
        File.WriteAllText(Path.Combine(c.Rootfs, "marker"), "");
        var result = await c.RunAsync();
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal(["app.wasm", "marker"], result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Preopen_annotation_makes_the_root_read_only_with_a_writable_data_folder()
    {
        var options = new[]
        {
            "--annotation", $"{WasiPreopens.Annotation}=/:ro,/data:rw",
            "--mount", $"type=bind,src={_host},dst=/data,options=rbind:rw",
        };
        var root = await RunAsync(options, "write", "/new.txt", "x");
        Assert.Equal(1, root.ExitCode);
        Assert.Contains("write: cannot open /new.txt", root.Stderr);
        var data = await RunAsync(options, "write", "/data/ok.txt", "yes");
        Assert.True(data.Succeeded, data.ToString());
        Assert.Equal("yes", File.ReadAllText(Path.Combine(_host, "ok.txt")));
    }

    [Fact]
    public async Task Preopen_annotation_none_leaves_no_filesystem()
    {
        var result = await RunAsync(["--annotation", $"{WasiPreopens.Annotation}=none"], "ls", "/");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("ls: cannot open /", result.Stderr);
    }

    [Theory]
    [InlineData("/:rx", "unknown permission \"rx\" (use ro or rw)")]
    [InlineData("/../etc:ro", "\"/../etc\" is outside the rootfs")]
    [InlineData("/data", "is not <path>:<ro|rw>")]
    public async Task Bad_preopen_annotation_fails_create_with_the_reason(string value, string reason)
    {
        var id = WasmShimFixture.NewId("badpreopen");
        var result = await fx.RunAsync(fx.DemoImage, id, [Demo, "echo", "never"], ["--annotation", $"{WasiPreopens.Annotation}={value}"]);
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains($"annotation {WasiPreopens.Annotation}=", result.Stderr);
        Assert.Contains(reason, result.Stderr);
        Assert.DoesNotContain("never", result.Stdout);
        await fx.Containerd.CtrAsync("container", "delete", id);
    }

    private Task<Containerd.Testing.ProcessResult> RunAsync(string[] options, params string[] args) =>
        fx.RunAsync(fx.DemoImage, WasmShimFixture.NewId("fs"), [Demo, .. args], options);

    // The binds were made in the instance's own mount namespace, which died with it.
    private void AssertNoMountLeft() =>
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(_host, StringComparison.Ordinal));
}
