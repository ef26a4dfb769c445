using Containerd.Shim.Wasm;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>Entrypoint rules: path[#function], PATH then cwd lookup, symlinks resolved inside the rootfs only.</summary>
public sealed class EntrypointResolverTests : IDisposable
{
    private static readonly byte[] Wasm = [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0];
    private readonly string _rootfs = Directory.CreateTempSubdirectory("entrypoint-").FullName;

    public EntrypointResolverTests()
    {
        Write("app.wasm", Wasm);
        Write("bin/tool.wasm", Wasm);
        Write("work/local.wasm", Wasm);
        Write("text.wat", "(module)"u8.ToArray());
        Write("readme.txt", "hello"u8.ToArray());
        File.CreateSymbolicLink(Path.Combine(_rootfs, "bin/abs-link.wasm"), "/app.wasm");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "rel-link.wasm"), "bin/tool.wasm");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "host.wasm"), "/etc/hostname");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "up.wasm"), "../../../etc/hostname");
        Directory.CreateSymbolicLink(Path.Combine(_rootfs, "etc-dir"), "/etc");
    }

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    [Fact]
    public void AbsolutePathResolvesInsideRootfsWithDefaultFunction()
    {
        var e = Resolve("/app.wasm");
        Assert.Equal(Path.Combine(_rootfs, "app.wasm"), e.Path);
        Assert.Equal("_start", e.Function);
        Assert.Equal("/app.wasm", e.Name);
        Assert.Equal(ModuleFormat.Binary, e.Format);
    }

    [Fact]
    public void HashSelectsTheFunction()
    {
        var e = Resolve("/app.wasm#hello");
        Assert.Equal("hello", e.Function);
        Assert.Equal("/app.wasm", e.Name);
    }

    [Fact]
    public void BareNameIsLookedUpInPathThenCwd()
    {
        Assert.Equal(Path.Combine(_rootfs, "bin/tool.wasm"), Resolve("tool.wasm", cwd: "/work").Path);
        Assert.Equal(Path.Combine(_rootfs, "work/local.wasm"), Resolve("local.wasm", cwd: "/work").Path);
    }

    [Fact]
    public void RelativePathIsRelativeToCwd()
    {
        Assert.Equal(Path.Combine(_rootfs, "work/local.wasm"), Resolve("./local.wasm", cwd: "/work").Path);
    }

    [Fact]
    public void SymlinksAreFollowedInsideTheRootfs()
    {
        Assert.Equal(Path.Combine(_rootfs, "app.wasm"), Resolve("/bin/abs-link.wasm").Path);
        Assert.Equal(Path.Combine(_rootfs, "bin/tool.wasm"), Resolve("/rel-link.wasm").Path);
    }

    [Fact]
    public void WatTextIsAccepted()
    {
        Assert.Equal(ModuleFormat.Text, Resolve("/text.wat").Format);
    }

    [Fact]
    public void MissingFileIsNotFoundNamingThePath()
    {
        var e = Fails("/nope.wasm", EntrypointError.NotFound);
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains("/nope.wasm", e.Message);
        Assert.Contains("no such file", e.Message);
    }

    [Fact]
    public void NonWasmFileIsRejectedNamingThePath()
    {
        var e = Fails("/readme.txt", EntrypointError.NotWasm);
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("/readme.txt: not a wasm module or wat file", e.Message);
    }

    [Fact]
    public void DotDotAboveTheRootEscapes()
    {
        var e = Fails("/../../etc/hostname", EntrypointError.EscapesRootfs);
        Assert.Contains("escapes the rootfs", e.Message);
        Fails("../etc/hostname", EntrypointError.EscapesRootfs);
    }

    [Fact]
    public void RelativeSymlinkClimbingOutEscapes()
    {
        Assert.Contains("escapes the rootfs", Fails("/up.wasm", EntrypointError.EscapesRootfs).Message);
    }

    [Fact]
    public void AbsoluteSymlinkToAHostFileNeverReachesTheHost()
    {
        var e = Fails("/host.wasm", EntrypointError.EscapesRootfs);
        Assert.Contains("/host.wasm -> /etc/hostname", e.Message);
        Assert.Contains("outside the rootfs", e.Message);
        // A directory symlink to the host's /etc is resolved inside the rootfs too: no host file is ever opened.
        Fails("/etc-dir/hostname", EntrypointError.EscapesRootfs);
    }

    [Fact]
    public void EmptyArgsAreRejected()
    {
        Assert.Throws<EntrypointException>(() => EntrypointResolver.Resolve(_rootfs, [], [], "/"));
    }

    private Entrypoint Resolve(string arg0, string cwd = "/") =>
        EntrypointResolver.Resolve(_rootfs, [arg0, "x"], ["PATH=/usr/bin:/bin"], cwd);

    private EntrypointException Fails(string arg0, EntrypointError expected)
    {
        var e = Assert.Throws<EntrypointException>(() => Resolve(arg0));
        Assert.Equal(expected, e.Error);
        return e;
    }

    private void Write(string relative, byte[] content)
    {
        var path = Path.Combine(_rootfs, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }
}
