using Containerd.Testing;
using Xunit;

namespace Foundation.Tests;

/// <summary>The harness's config generation and version mapping, without starting containerd.</summary>
public sealed class HarnessConfigTests
{
    [Theory]
    [InlineData(null, "1.6")]
    [InlineData("", "1.6")]
    [InlineData("1.6", "1.6")]
    [InlineData("v1.6.20", "1.6")]
    [InlineData("1.7", "1.7")]
    [InlineData("2", "2")]
    [InlineData("2.1", "2")]
    [InlineData("v2.1.9", "2")]
    public void Version_maps_onto_a_release_line(string? input, string expected) =>
        Assert.Equal(expected, ContainerdOptions.NormalizeVersion(input));

    [Theory]
    [InlineData("1.5")]
    [InlineData("3")]
    [InlineData("latest")]
    public void Unsupported_version_is_rejected(string input) =>
        Assert.Throws<ArgumentException>(() => ContainerdOptions.NormalizeVersion(input));

    [Theory]
    [InlineData("1.6", "version = 2")]
    [InlineData("1.7", "version = 2")]
    [InlineData("2", "version = 3")]
    public void Config_format_follows_the_release_line(string version, string header)
    {
        var toml = Render(new ContainerdOptions { Version = version });

        Assert.StartsWith(header + "\n", toml.ReplaceLineEndings("\n"));
        Assert.Contains("address = \"/w/c.sock\"", toml);
        Assert.Contains("address = \"/w/c.sock.ttrpc\"", toml);
        Assert.Contains("io.containerd.grpc.v1.cri", toml[..toml.IndexOf("[grpc]", StringComparison.Ordinal)]);
        Assert.Contains("\"io.containerd.nri.v1.nri\"", toml);
        Assert.Contains("path = \"/w/opt\"", toml);
    }

    [Fact]
    public void Cri_on_1x_sets_sandbox_image_oom_restriction_and_runtimes_under_the_cri_plugin()
    {
        var toml = Render(new ContainerdOptions
        {
            Version = "1.7",
            EnableCri = true,
            SandboxImage = "example.test/pause:1",
            CriRuntimes = new Dictionary<string, string> { ["wasmtime"] = "io.containerd.wasmtime.v1" },
        });

        Assert.DoesNotContain("\"io.containerd.grpc.v1.cri\"]\n", Disabled(toml));
        Assert.Contains("sandbox_image = \"example.test/pause:1\"", toml);
        Assert.Contains("restrict_oom_score_adj = true", toml);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"runc\"]", toml);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"wasmtime\"]", toml);
    }

    [Fact]
    public void Cri_on_2x_uses_the_split_cri_plugins()
    {
        var toml = Render(new ContainerdOptions
        {
            Version = "2",
            EnableCri = true,
            SandboxImage = "example.test/pause:1",
            CriRuntimes = new Dictionary<string, string> { ["wasmtime"] = "io.containerd.wasmtime.v1" },
        });

        Assert.DoesNotContain("cri", Disabled(toml));
        Assert.Contains("[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \"example.test/pause:1\"", toml.ReplaceLineEndings("\n"));
        Assert.Contains("[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true", toml.ReplaceLineEndings("\n"));
        Assert.Contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.\"wasmtime\"]", toml);
    }

    [Fact]
    public void Extra_config_is_appended_verbatim()
    {
        var toml = Render(new ContainerdOptions { ExtraConfig = "[plugins.\"x\"]\n  y = 1" });

        Assert.EndsWith("[plugins.\"x\"]\n  y = 1", toml.TrimEnd().ReplaceLineEndings("\n"));
    }

    private static string Render(ContainerdOptions options) =>
        ContainerdConfig.Render(options, "/w/root", "/w/state", "/w/c.sock", "/w");

    private static string Disabled(string toml) =>
        toml.Split('\n').Single(l => l.StartsWith("disabled_plugins", StringComparison.Ordinal));
}
