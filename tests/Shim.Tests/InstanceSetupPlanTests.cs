using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>The plan the shim writes for the native constructor, from OCI specs (no containerd needed).</summary>
public sealed class InstanceSetupPlanTests
{
    private static Spec Parse(string json) => Spec.Parse(System.Text.Encoding.UTF8.GetBytes(json), "test");

    private static string[] Lines(string json, IReadOnlyList<string>? cgroup = null) =>
        InstanceSetupPlan.Build(Parse(json), cgroup).TrimEnd('\n').Split('\n');

    [Fact]
    public void Empty_spec_runs_as_root_with_no_capabilities_in_a_mount_namespace_of_its_own()
    {
        Assert.Equal([InstanceSetupPlan.Header, "new\tmnt", "user\t0\t0", "caps\t0\t0\t0\t0\t0\t0\t0"], Lines("{}"));
    }

    [Fact]
    public void User_rlimits_capabilities_and_no_new_privileges_become_numbers()
    {
        var lines = Lines("""
            {"process": {"user": {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 18},
              "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
              "capabilities": {"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                               "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "inheritable": ["CAP_NET_BIND_SERVICE"],
                               "ambient": ["CAP_NET_BIND_SERVICE"]},
              "noNewPrivileges": true}}
            """);
        // A non-root user keeps its ambient set only, as after an execve; the spec's sets hold while it is raised.
        Assert.Equal(
            [InstanceSetupPlan.Header, "new\tmnt", "rlimit\t7\t100\t200", "umask\t22", "user\t1000\t1001\t10,20",
             "caps\t420\t400\t400\t400\t400\t420\t420", "nnp"],
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
    public void Bind_mounts_keep_their_order_and_options_and_other_types_are_skipped()
    {
        var lines = Lines("""
            {"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/etc/hosts", "type": "bind", "source": "/tmp/hosts", "options": ["rbind", "ro"]},
              {"destination": "/data/x", "type": "bind", "source": "/tmp", "options": ["bind", "rw", "nosuid", "nodev", "noexec"]},
              {"destination": "/kube", "type": "none", "source": "/tmp", "options": ["rbind", "rro"]}]}
            """);
        Assert.Equal(
            ["bind\tro---\t/tmp/hosts\t/etc/hosts\tmounts[1] (/etc/hosts)", "bind\t--sdx\t/tmp\t/data/x\tmounts[2] (/data/x)",
             "bind\tro---\t/tmp\t/kube\tmounts[3] (/kube)"],
            lines.Where(l => l.StartsWith("bind", StringComparison.Ordinal)));
    }

    [Fact]
    public void Read_only_root_masked_and_read_only_paths_and_the_cgroup_are_in_the_plan()
    {
        var lines = Lines("""
            {"root": {"path": "rootfs", "readonly": true},
             "linux": {"maskedPaths": ["/proc/kcore", "/sys/firmware"], "readonlyPaths": ["/proc/sys"]}}
            """, ["/sys/fs/cgroup/memory/ns/id", "/sys/fs/cgroup/pids/ns/id"]);
        Assert.Equal(
            ["rootfs\tro", "mask\t/proc/kcore", "mask\t/sys/firmware", "readonly\t/proc/sys",
             "cgroup\t/sys/fs/cgroup/memory/ns/id/cgroup.procs", "cgroup\t/sys/fs/cgroup/pids/ns/id/cgroup.procs"],
            lines[2..8]);
    }

    [Theory]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}}""", "unknown rlimit \"RLIMIT_BOGUS\"")]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]}}""", "soft limit 2 is above the hard limit 1")]
    [InlineData("""{"process": {"capabilities": {"effective": ["CAP_FLY"]}}}""", "process.capabilities.effective: unknown capability \"CAP_FLY\"")]
    [InlineData("""{"linux": {"namespaces": [{"type": "user"}]}}""", "creating a user namespace is not supported")]
    [InlineData("""{"linux": {"namespaces": [{"type": "bogus"}]}}""", "unknown namespace type \"bogus\"")]
    [InlineData("""{"mounts": [{"destination": "/x", "type": "bind", "source": "relative"}]}""", "mounts[0] (/x): the source must be an absolute host path")]
    [InlineData("""{"mounts": [{"destination": "x", "type": "bind", "source": "/tmp"}]}""", "mounts[0] (x): the destination must be an absolute path")]
    [InlineData("""{"mounts": [{"destination": "/../../x", "type": "bind", "source": "/tmp"}]}""", "mounts[0] (/../../x): destination /../../x: escapes the rootfs")]
    [InlineData("""{"linux": {"maskedPaths": ["/a/../../etc"]}}""", "linux.maskedPaths[0]: destination /a/../../etc: escapes the rootfs")]
    [InlineData("""{"hostname": "a\tb", "linux": {"namespaces": [{"type": "uts"}]}}""", "hostname: \"a\tb\" contains a tab")]
    public void Bad_specs_fail_with_the_field_and_the_reason(string json, string message)
    {
        var e = Assert.Throws<ShimException>(() => InstanceSetupPlan.Build(Parse(json)));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(message, e.Message);
    }

    [Theory]
    // runc's sets after its execve (capabilities(7)): root gets inheritable | bounding, a user its ambient set.
    [InlineData(true, false, 0x420UL, 0x400UL, 0x400UL, 0UL, 0UL, 0x420UL, 0x420UL, 0UL)]
    [InlineData(true, true, 0x420UL, 0x400UL, 0x400UL, 0UL, 0UL, 0x400UL, 0x400UL, 0UL)]
    [InlineData(false, false, 0x420UL, 0x420UL, 0x420UL, 0UL, 0UL, 0UL, 0UL, 0UL)]
    [InlineData(false, false, 0x420UL, 0x420UL, 0x420UL, 0x400UL, 0x400UL, 0x400UL, 0x400UL, 0x400UL)]
    public void Capabilities_are_what_an_execve_would_leave(bool root, bool nnp, ulong bounding, ulong effective, ulong permitted,
        ulong inheritable, ulong ambient, ulong wantEffective, ulong wantPermitted, ulong wantAmbient)
    {
        var caps = Capabilities.AfterExec(bounding, effective, permitted, inheritable, ambient, root, nnp);
        Assert.Equal((wantEffective, wantPermitted, wantAmbient, bounding, inheritable),
            (caps.Effective, caps.Permitted, caps.Ambient, caps.Bounding, caps.Inheritable));
    }
}
