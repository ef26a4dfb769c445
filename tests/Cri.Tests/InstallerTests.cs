using System.Runtime.Versioning;
using NodeInstaller;
using Xunit;

namespace Cri.Tests;

/// <summary>The installer's file handling: copying the shim, writing the config, the dry run.</summary>
[SupportedOSPlatform("linux")]
public sealed class InstallerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wasm-install-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Installs_the_shim_files_and_the_handler_then_a_second_run_changes_nothing()
    {
        var source = Source();
        var options = new InstallOptions { ConfigPath = Path.Combine(_dir, "etc", "config.toml"), BinDir = Path.Combine(_dir, "bin"), SourceDir = source, ContainerdVersion = "1.7.24" };

        var first = new StringWriter();
        Assert.True(Installer.Run(options, first));
        var config = File.ReadAllText(options.ConfigPath);
        var shim = Path.Combine(options.BinDir!, "containerd-shim-wasmtime-v1");
        Assert.Equal("shim", File.ReadAllText(shim));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(shim));
        Assert.True(File.Exists(Path.Combine(options.BinDir!, "libwasmtime.so")));
        Assert.StartsWith("version = 2\n", config);

        var second = new StringWriter();
        Assert.False(Installer.Run(options, second));
        Assert.Equal(config, File.ReadAllText(options.ConfigPath));
        Assert.Contains("up to date", second.ToString());
        Assert.Contains("already has runtime_type", second.ToString());
        Assert.Empty(Directory.EnumerateFiles(_dir, "*.partial", SearchOption.AllDirectories));
    }

    [Fact]
    public void Dry_run_prints_the_diff_and_touches_nothing()
    {
        var config = Path.Combine(_dir, "config.toml");
        File.WriteAllText(config, "version = 3\n");
        var output = new StringWriter();

        Assert.True(Installer.Run(new InstallOptions { ConfigPath = config, BinDir = Path.Combine(_dir, "bin"), SourceDir = Source(), DryRun = true }, output));

        Assert.Equal("version = 3\n", File.ReadAllText(config));
        Assert.False(Directory.Exists(Path.Combine(_dir, "bin")));
        Assert.Contains("+[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmtime]", output.ToString());
        Assert.Contains(" version = 3", output.ToString());
        Assert.Contains("would copy", output.ToString());
    }

    [Fact]
    public void A_missing_shim_is_reported_by_path()
    {
        var e = Assert.Throws<InstallerException>(() => Installer.Run(
            new InstallOptions { ConfigPath = Path.Combine(_dir, "c.toml"), BinDir = Path.Combine(_dir, "bin"), SourceDir = Path.Combine(_dir, "nowhere") },
            TextWriter.Null));

        Assert.Contains(Path.Combine(_dir, "nowhere", "containerd-shim-wasmtime-v1"), e.Message);
    }

    [Fact]
    public void The_config_keeps_its_file_mode()
    {
        var config = Path.Combine(_dir, "config.toml");
        File.WriteAllText(config, "version = 2\n");
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        Installer.Run(new InstallOptions { ConfigPath = config, SourceDir = _dir }, TextWriter.Null);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
        Assert.Contains("runtimes.wasmtime", File.ReadAllText(config));
    }

    private string Source()
    {
        var source = Path.Combine(_dir, "src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "containerd-shim-wasmtime-v1"), "shim");
        File.WriteAllText(Path.Combine(source, "libwasmtime.so"), "lib");
        return source;
    }
}
