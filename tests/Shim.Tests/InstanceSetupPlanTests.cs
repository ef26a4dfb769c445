using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>The plan the shim writes for the native constructor, from OCI specs (no containerd needed).</summary>
public sealed class InstanceSetupPlanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("setup-plan-").FullName;

    private string Rootfs => Path.Combine(_dir, "rootfs");

    public InstanceSetupPlanTests() => Directory.CreateDirectory(Rootfs);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Spec Parse(string json) => Spec.Parse(System.Text.Encoding.UTF8.GetBytes(json), "test");

    private string[] Lines(string json) => InstanceSetupPlan.Build(Parse(json), Rootfs).TrimEnd('\n').Split('\n');

    [Fact]
    public void Empty_spec_runs_as_root_with_no_capabilities()
    {
        Assert.Equal([InstanceSetupPlan.Header, "user\t0\t0", "caps\t0\t0\t0\t0\t0"], Lines("{}"));
    }

    [Fact]
    public void User_rlimits_capabilities_and_no_new_privileges_become_numbers()
    {
        var lines = Lines("""
            {"process": {"user": {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 18},
              "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
              "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE"],
                               "permitted": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]},
              "noNewPrivileges": true}}
            """);
        Assert.Equal(
            [InstanceSetupPlan.Header, "rlimit\t7\t100\t200", "umask\t22", "user\t1000\t1001\t10,20",
             "caps\t420\t400\t400\t0\t400", "nnp"],
            lines);
    }

    [Fact]
    public void Namespaces_with_a_path_are_joined_the_others_created_pid_is_left_out()
    {
        var lines = Lines("""
            {"hostname": "box", "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/pod"},
              {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]}}
            """);
        Assert.Equal(
            [InstanceSetupPlan.Header, "join\tnet\t/run/netns/pod", "new\tcgroup", "new\tipc", "new\tmnt", "new\tuts",
             "hostname\tbox"],
            lines[..7]);
    }

    [Fact]
    public void Bind_mounts_create_their_mount_points_inside_the_rootfs_and_other_types_are_skipped()
    {
        var file = Path.Combine(_dir, "hosts");
        File.WriteAllText(file, "127.0.0.1 localhost\n");
        Directory.CreateDirectory(Path.Combine(Rootfs, "etc"));
        // A hostile image: /data is a symlink to the host's /var; the mount point must still land in the rootfs.
        File.CreateSymbolicLink(Path.Combine(Rootfs, "data"), "/var");
        var lines = Lines($$"""
            {"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/etc/hosts", "type": "bind", "source": "{{file}}", "options": ["rbind", "ro"]},
              {"destination": "/data/x", "type": "bind", "source": "{{_dir}}", "options": ["bind", "rw"]}]}
            """);
        Assert.Equal("new\tmnt", lines[1]);
        Assert.Equal($"bind\tro\t{file}\t{Rootfs}/etc/hosts", lines[2]);
        Assert.Equal($"bind\t--\t{_dir}\t{Rootfs}/var/x", lines[3]);
        Assert.True(File.Exists(Path.Combine(Rootfs, "etc", "hosts")));
        Assert.True(Directory.Exists(Path.Combine(Rootfs, "var", "x")));
    }

    [Fact]
    public void Read_only_root_binds_the_rootfs_onto_itself_first()
    {
        var lines = Lines("""{"root": {"path": "rootfs", "readonly": true}}""");
        Assert.Equal(["new\tmnt", $"bind\tro\t{Rootfs}\t{Rootfs}"], lines[1..3]);
    }

    [Theory]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}}""", "unknown rlimit \"RLIMIT_BOGUS\"")]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}}""", "soft limit 2 is above the hard limit 1")]
    [InlineData("""{"process": {"capabilities": {"effective": ["CAP_FLY"]}}}""", "process.capabilities.effective: unknown capability \"CAP_FLY\"")]
    [InlineData("""{"linux": {"namespaces": [{"type": "user"}]}}""", "creating a user namespace is not supported")]
    [InlineData("""{"linux": {"namespaces": [{"type": "bogus"}]}}""", "unknown namespace type \"bogus\"")]
    [InlineData("""{"mounts": [{"destination": "/x", "type": "bind", "source": "relative"}]}""", "mounts[0] (/x): the source must be an absolute host path")]
    [InlineData("""{"mounts": [{"destination": "/../../x", "type": "bind", "source": "/tmp"}]}""", "mounts[0] (/../../x): destination /../../x: escapes the rootfs")]
    [InlineData("""{"hostname": "a\tb", "linux": {"namespaces": [{"type": "uts"}]}}""", "hostname: \"a\tb\" contains a tab")]
    public void Bad_specs_fail_with_the_field_and_the_reason(string json, string message)
    {
        var e = Assert.Throws<ShimException>(() => InstanceSetupPlan.Build(Parse(json), Rootfs));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Missing_bind_source_is_not_found()
    {
        var e = Assert.Throws<ShimException>(() => InstanceSetupPlan.Build(
            Parse("""{"mounts": [{"destination": "/x", "type": "bind", "source": "/nonexistent/source"}]}"""), Rootfs));
        Assert.Equal(StatusCode.NotFound, e.Code);
        Assert.Contains("/nonexistent/source: no such file or directory", e.Message);
    }
}
