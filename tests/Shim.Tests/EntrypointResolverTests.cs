using Containerd.Shim.Wasm;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// Entrypoint rules: path[#function], PATH then cwd lookup, everything resolved by descriptor inside the rootfs as
/// the container sees it, and the module read through that descriptor. Every file holds a distinct module, so a test
/// tells which file was read. Each case runs with the kernel's openat2 and with the fallback walk.
/// </summary>
[Collection(RootfsPathCollection.Name)]
public sealed class EntrypointResolverTests : IDisposable
{
    private readonly string _rootfs = Directory.CreateTempSubdirectory("entrypoint-").FullName;

    public EntrypointResolverTests()
    {
        Write("app.wasm", Module(1));
        Write("bin/tool.wasm", Module(2));
        Write("work/local.wasm", Module(3));
        Write("text.wat", "(module)"u8.ToArray());
        Write("readme.txt", "hello"u8.ToArray());
        Write("etc/hostname", Module(4));
        File.CreateSymbolicLink(Path.Combine(_rootfs, "bin/abs-link.wasm"), "/app.wasm");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "rel-link.wasm"), "bin/tool.wasm");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "host.wasm"), "/etc/shadow");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "up.wasm"), "../../../etc/hostname");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "loop"), "loop");
        Directory.CreateSymbolicLink(Path.Combine(_rootfs, "etc-dir"), "/etc");
        Assert.Equal(0, Mkfifo(Path.Combine(_rootfs, "fifo.wasm"), 0b110_110_110));
    }

    public void Dispose()
    {
        RootfsPath.ForceWalk = false;
        Directory.Delete(_rootfs, recursive: true);
    }

    public static TheoryData<bool> Strategies => [false, true];

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Absolute_path_is_read_from_inside_the_rootfs_with_the_default_function(bool walk)
    {
        var e = Resolve("/app.wasm", walk: walk);
        Assert.Equal(Module(1), e.Bytes!.Value.ToArray());
        Assert.Null(e.Path);
        Assert.Equal("_start", e.Function);
        Assert.Equal("/app.wasm", e.Name);
        Assert.Equal(ModuleFormat.Binary, e.Format);
    }

    [Fact]
    public void Hash_selects_the_function()
    {
        var e = Resolve("/app.wasm#hello");
        Assert.Equal("hello", e.Function);
        Assert.Equal("/app.wasm", e.Name);
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Bare_name_is_looked_up_in_PATH_then_the_cwd(bool walk)
    {
        Assert.Equal(Module(2), Resolve("tool.wasm", cwd: "/work", walk: walk).Bytes!.Value.ToArray());
        Assert.Equal(Module(3), Resolve("local.wasm", cwd: "/work", walk: walk).Bytes!.Value.ToArray());
        Assert.Equal(Module(3), Resolve("./local.wasm", cwd: "/work", walk: walk).Bytes!.Value.ToArray());
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void Symlinks_are_followed_inside_the_rootfs(bool walk)
    {
        Assert.Equal(Module(1), Resolve("/bin/abs-link.wasm", walk: walk).Bytes!.Value.ToArray());
        Assert.Equal(Module(2), Resolve("/rel-link.wasm", walk: walk).Bytes!.Value.ToArray());
        // ../../../etc/hostname climbs no further than the root, as inside the container: the image's own file.
        Assert.Equal(Module(4), Resolve("/up.wasm", walk: walk).Bytes!.Value.ToArray());
        Assert.Equal(Module(4), Resolve("/etc-dir/hostname", walk: walk).Bytes!.Value.ToArray());
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void An_absolute_symlink_to_a_host_file_never_reaches_the_host(bool walk)
    {
        var e = Fails("/host.wasm", EntrypointError.NotFound, walk);
        Assert.Contains("no such file in the rootfs (through the symlink /host.wasm -> /etc/shadow", e.Message);
        Assert.DoesNotContain("root:", e.Message);
    }

    [Fact]
    public void Wat_text_is_accepted() => Assert.Equal(ModuleFormat.Text, Resolve("/text.wat").Format);

    [Fact]
    public void Missing_file_is_not_found_naming_the_path()
    {
        var e = Fails("/nope.wasm", EntrypointError.NotFound);
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains("entrypoint /nope.wasm: no such file in the rootfs", e.Message);
        Assert.Contains("searched PATH and the cwd", Fails("nope.wasm", EntrypointError.NotFound).Message);
    }

    [Fact]
    public void Non_wasm_file_is_rejected_naming_the_path()
    {
        var e = Fails("/readme.txt", EntrypointError.NotWasm);
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("/readme.txt: not a wasm module or wat file", e.Message);
    }

    [Fact]
    public void A_fifo_or_a_directory_is_never_read()
    {
        // Opening the FIFO would block until a writer came: the resolver refuses it from its descriptor alone.
        Assert.Contains("is not a regular file", Fails("/fifo.wasm", EntrypointError.NotWasm).Message);
        Assert.Contains("is a directory", Fails("/bin", EntrypointError.NotWasm).Message);
    }

    [Theory]
    [MemberData(nameof(Strategies))]
    public void A_symlink_loop_is_refused(bool walk) =>
        Assert.Contains("too many levels of symbolic links", Fails("/loop", EntrypointError.EscapesRootfs, walk).Message);

    [Fact]
    public void Dot_dot_above_the_root_as_written_is_refused()
    {
        Assert.Contains("escapes the rootfs", Fails("/../../etc/hostname", EntrypointError.EscapesRootfs).Message);
        Fails("../etc/hostname", EntrypointError.EscapesRootfs);
    }

    [Fact]
    public void Empty_args_are_rejected() =>
        Assert.Throws<EntrypointException>(() => EntrypointResolver.Resolve(_rootfs, [], [], "/"));

    private static byte[] Module(byte marker) => [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0, 0, 1, marker];

    private Entrypoint Resolve(string arg0, string cwd = "/", bool walk = false)
    {
        RootfsPath.ForceWalk = walk;
        try
        {
            return EntrypointResolver.Resolve(_rootfs, [arg0, "x"], ["PATH=/usr/bin:/bin"], cwd);
        }
        finally
        {
            RootfsPath.ForceWalk = false;
        }
    }

    private EntrypointException Fails(string arg0, EntrypointError expected, bool walk = false)
    {
        var e = Assert.Throws<EntrypointException>(() => Resolve(arg0, walk: walk));
        Assert.Equal(expected, e.Error);
        return e;
    }

    private void Write(string relative, byte[] content)
    {
        var path = Path.Combine(_rootfs, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo")]
    private static extern int Mkfifo(string path, uint mode);
}

/// <summary>Tests that switch <see cref="RootfsPath.ForceWalk"/> (a static) run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RootfsPathCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "rootfs path";
}
