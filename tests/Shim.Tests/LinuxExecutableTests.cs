using System.Runtime.Versioning;
using Containerd.Shim.Wasm;
using Containerd.Shimkit.Runc;
using Xunit;

namespace Shim.Tests;

/// <summary>Which containers go to runc: args[0] resolved in the rootfs to an executable ELF or #! script.</summary>
[SupportedOSPlatform("linux")]
public sealed class LinuxExecutableTests : IDisposable
{
    private const UnixFileMode Exec = (UnixFileMode)0b111_101_101;
    private const UnixFileMode NoExec = (UnixFileMode)0b110_100_100;
    private static readonly byte[] Elf = [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0];
    private static readonly byte[] Wasm = [0, (byte)'a', (byte)'s', (byte)'m', 1, 0, 0, 0];
    private static readonly string[] Env = ["PATH=/usr/bin:/bin"];
    private readonly string _rootfs = Directory.CreateTempSubdirectory("linux-exec-").FullName;

    public LinuxExecutableTests()
    {
        Write("bin/busybox", Elf, Exec);
        File.CreateSymbolicLink(Path.Combine(_rootfs, "bin/sh"), "busybox");
        File.CreateSymbolicLink(Path.Combine(_rootfs, "bin/echo"), "/bin/busybox");
        Write("usr/bin/script", "#!/bin/sh\necho hi\n"u8.ToArray(), Exec);
        Write("app.wasm", Wasm, Exec);
        Write("app.wat", "(module)"u8.ToArray(), Exec);
        Write("plain-elf", Elf, NoExec);
        Write("tiny", [0x7F], Exec);
        Write("x#y", Elf, Exec);
        File.CreateSymbolicLink(Path.Combine(_rootfs, "escape"), "../../../bin/sh");
        // Never opened: reading a FIFO would block the shim's Create.
        Assert.Equal(0, Mkfifo(Path.Combine(_rootfs, "fifo"), 0b111_111_111));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo")]
    private static extern int Mkfifo(string path, uint mode);

    public void Dispose() => Directory.Delete(_rootfs, recursive: true);

    [Theory]
    [InlineData("/bin/busybox")]
    [InlineData("sh")]
    [InlineData("echo")]
    [InlineData("/usr/bin/script")]
    [InlineData("script")]
    [InlineData("x#y")]
    [InlineData("/escape")] // ../../../bin/sh: clamped at the root, as inside the container, so /bin/sh
    public void Elf_and_script_entrypoints_are_linux(string arg0) =>
        Assert.NotNull(LinuxExecutable.Find(_rootfs, [arg0, "arg"], Env, "/"));

    [Theory]
    [InlineData("/app.wasm")]
    [InlineData("/app.wasm#serve")]
    [InlineData("/app.wat")]
    [InlineData("/plain-elf")]
    [InlineData("/tiny")]
    [InlineData("/bin/busybox#main")]
    [InlineData("wasi-demo-oci.wasm")]
    [InlineData("/missing")]
    [InlineData("/../../bin/sh")]
    [InlineData("/fifo")]
    [InlineData("")]
    public void Everything_else_is_left_to_the_wasm_resolver(string arg0) =>
        Assert.Null(LinuxExecutable.Find(_rootfs, [arg0], Env, "/"));

    [Fact]
    public void Symlinks_resolve_inside_the_rootfs()
    {
        Assert.Equal(Path.Combine(_rootfs, "bin/busybox"), LinuxExecutable.Find(_rootfs, ["echo"], Env, "/"));
    }

    [Fact]
    public void Runc_log_errors_are_read_once_and_in_order()
    {
        const string log = """
            {"level":"info","msg":"starting","time":"2026-11-28T21:00:05Z"}
            {"level":"error","msg":"runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH","time":"2026-11-28T21:00:05Z"}
            runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH
            {"level":"warning","msg":"ignored","time":"2026-11-28T21:00:05Z"}
            flag provided but not defined: -bogus
            """;
        Assert.Equal(
            ["runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH", "flag provided but not defined: -bogus"],
            RuncCli.ParseErrors(log));
    }

    [Fact]
    public void Runc_options_follow_the_runtime_name()
    {
        var options = RuncOptions.ForRuntime("io.containerd.wasmtime.v1");
        Assert.Equal("/run/containerd/wasmtime-runc", options.RootBase);
        Assert.Equal("/run/containerd/wasmtime-runc/k8s.io", options.RootFor("k8s.io"));
        Assert.Equal("CONTAINERD_SHIM_WASMTIME_RUNC", RuncOptions.BinaryVariable("io.containerd.wasmtime.v1"));
        Assert.NotEqual("/run/containerd/runc", options.RootBase);
    }

    private void Write(string relative, byte[] content, UnixFileMode mode)
    {
        var path = Path.Combine(_rootfs, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, mode);
    }
}
