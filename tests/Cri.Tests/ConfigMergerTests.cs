using NodeInstaller;
using Tomlyn.Parsing;
using Xunit;

namespace Cri.Tests;

/// <summary>The node installer's config.toml merge: both config versions, idempotence, and everything else kept.</summary>
public sealed class ConfigMergerTests
{
    private const string Wasmtime = "io.containerd.wasmtime.v1";

    private const string V2File = """
        # containerd 1.7 on this node: managed by hand
        version = 2
        oom_score = -999

        [grpc]
          address = "/run/containerd/containerd.sock" # the default

        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "registry.k8s.io/pause:3.9"
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "/opt/cni/bin"
        """;

    private const string V3File = """
        version = 3
        # 2.x splits CRI into plugins
        [plugins.'io.containerd.cri.v1.images'.pinned_images]
          sandbox = 'registry.k8s.io/pause:3.10'

        [plugins.'io.containerd.cri.v1.runtime']
          enable_cdi = true
        """;

    [Fact]
    public void Version_2_file_gets_the_handler_under_the_cri_plugin_and_keeps_every_line()
    {
        var result = ConfigMerger.Merge(V2File, "wasmtime", Wasmtime);

        Assert.True(result.Changed);
        Assert.Equal(2, result.ConfigVersion);
        Assert.StartsWith(V2File, result.Text);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmtime]\n  runtime_type = \"io.containerd.wasmtime.v1\"\n", result.Text);
        // 1.x refuses to load CRI when its default handler is not among the declared runtimes.
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n", result.Text);
        AssertValidToml(result.Text);
    }

    [Fact]
    public void Version_3_file_gets_the_handler_under_the_cri_runtime_plugin()
    {
        var result = ConfigMerger.Merge(V3File, "wasmtime", Wasmtime);

        Assert.Equal(3, result.ConfigVersion);
        Assert.StartsWith(V3File, result.Text);
        Assert.Contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmtime]\n  runtime_type = \"io.containerd.wasmtime.v1\"\n", result.Text);
        Assert.DoesNotContain("runtimes.runc", result.Text);
        AssertValidToml(result.Text);
    }

    [Theory]
    [InlineData(V2File)]
    [InlineData(V3File)]
    [InlineData("")]
    public void Running_twice_gives_byte_identical_output(string file)
    {
        var once = ConfigMerger.Merge(file, "wasmtime", Wasmtime, containerdMajor: 2).Text;
        var twice = ConfigMerger.Merge(once, "wasmtime", Wasmtime, containerdMajor: 2);

        Assert.False(twice.Changed);
        Assert.Same(once, twice.Text);
    }

    [Theory]
    [InlineData(1, "version = 2\n", "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmtime]")]
    [InlineData(2, "version = 3\n", "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmtime]")]
    public void Empty_file_is_written_in_the_format_of_the_given_containerd(int major, string start, string header)
    {
        var result = ConfigMerger.Merge("", "wasmtime", Wasmtime, major);

        Assert.StartsWith(start, result.Text);
        Assert.Contains(header, result.Text);
        AssertValidToml(result.Text);
    }

    [Fact]
    public void Empty_file_without_a_containerd_version_is_refused()
    {
        var e = Assert.Throws<InstallerException>(() => ConfigMerger.Merge("# nothing yet\n", "wasmtime", Wasmtime, sourceName: "/etc/containerd/config.toml"));

        Assert.Contains("/etc/containerd/config.toml", e.Message);
        Assert.Contains("--containerd-version", e.Message);
    }

    [Fact]
    public void Comment_only_file_keeps_its_comments()
    {
        var result = ConfigMerger.Merge("# node config\n", "wasmtime", Wasmtime, 2);

        Assert.StartsWith("version = 3\n# node config\n", result.Text);
    }

    [Fact]
    public void File_already_holding_the_entry_in_another_spelling_is_returned_unchanged()
    {
        const string file = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.'wasmtime']\n    runtime_type = 'io.containerd.wasmtime.v1'\n";

        var result = ConfigMerger.Merge(file, "wasmtime", Wasmtime);

        Assert.False(result.Changed);
        Assert.Same(file, result.Text);
    }

    [Fact]
    public void Other_runtimes_are_kept_and_runc_is_not_added_again()
    {
        const string file = """
            version = 2
            [plugins."io.containerd.grpc.v1.cri".containerd]
              default_runtime_name = "crun"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
              runtime_type = "io.containerd.runc.v2"
              [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
                BinaryName = "/usr/bin/crun"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
              runtime_type = "io.containerd.kata.v2"
            """;

        var result = ConfigMerger.Merge(file, "wasmtime", Wasmtime);

        Assert.StartsWith(file, result.Text);
        Assert.DoesNotContain("runtimes.runc", result.Text);
        Assert.Contains("runtimes.wasmtime]", result.Text);
        AssertValidToml(result.Text);
    }

    [Fact]
    public void A_different_runtime_type_is_replaced_in_place_and_the_tables_other_keys_stay()
    {
        const string file = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.wasmtime]\n  runtime_type = \"io.containerd.wasmtime.v0\" # old\n  pod_annotations = [\"*\"]\n";

        var result = ConfigMerger.Merge(file, "wasmtime", Wasmtime);

        Assert.Equal(file.Replace("io.containerd.wasmtime.v0", Wasmtime, StringComparison.Ordinal), result.Text);
    }

    [Fact]
    public void A_table_without_runtime_type_gets_it_after_its_header()
    {
        const string file = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmtime]\n  pod_annotations = [\"*\"]";

        var result = ConfigMerger.Merge(file, "wasmtime", Wasmtime);

        Assert.Equal(
            "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.wasmtime]\n  runtime_type = \"io.containerd.wasmtime.v1\"\n  pod_annotations = [\"*\"]",
            result.Text);
    }

    [Fact]
    public void Windows_line_endings_are_kept()
    {
        var file = V3File.ReplaceLineEndings("\r\n") + "\r\n";

        var result = ConfigMerger.Merge(file, "wasmtime", Wasmtime);

        Assert.StartsWith(file, result.Text);
        Assert.DoesNotContain("\n", result.Text.Replace("\r\n", "", StringComparison.Ordinal));
    }

    [Fact]
    public void A_runtime_name_that_is_not_a_bare_key_is_quoted()
    {
        var result = ConfigMerger.Merge("version = 3\n", "wasm time", Wasmtime);

        Assert.Contains("runtimes.\"wasm time\"]", result.Text);
        Assert.False(ConfigMerger.Merge(result.Text, "wasm time", Wasmtime).Changed);
    }

    [Theory]
    [InlineData("[grpc]\n  address = \"/run/x.sock\"\n", "version 1")]
    [InlineData("version = 4\n", "version = 4")]
    [InlineData("version = \"2\"\n", "must be an integer")]
    [InlineData("version = 2\n[grpc\n", "not valid TOML")]
    public void Files_it_cannot_edit_are_refused_with_the_reason(string file, string reason)
    {
        var e = Assert.Throws<InstallerException>(() => ConfigMerger.Merge(file, "wasmtime", Wasmtime, sourceName: "node.toml"));

        Assert.Contains("node.toml", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Version_3_file_is_refused_for_containerd_1()
    {
        var e = Assert.Throws<InstallerException>(() => ConfigMerger.Merge(V3File, "wasmtime", Wasmtime, containerdMajor: 1));

        Assert.Contains("containerd 1.x cannot read", e.Message);
    }

    [Theory]
    [InlineData("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes.wasmtime.runtime_type = \"x\"\n")]
    [InlineData("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { wasmtime = { runtime_type = \"x\" } }\n")]
    public void Dotted_keys_and_inline_tables_are_refused_with_the_line(string file)
    {
        var e = Assert.Throws<InstallerException>(() => ConfigMerger.Merge(file, "wasmtime", Wasmtime, sourceName: "c.toml"));

        Assert.Contains("c.toml line 3", e.Message);
        Assert.Contains("by hand", e.Message);
    }

    private static void AssertValidToml(string text)
    {
        var doc = SyntaxParser.Parse(text, "merged", validate: true);
        Assert.False(doc.HasErrors, doc.Diagnostics.ToString());
    }
}
