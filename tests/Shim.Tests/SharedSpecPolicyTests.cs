using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>What shared mode's spec policy accepts, opens and refuses (no containerd needed).</summary>
public sealed class SharedSpecPolicyTests : IDisposable
{
    // containerd's default spec as ctr run sends it (1.6/1.7), for a wasm image.
    private const string CtrDefault = """
        {"ociVersion": "1.0.2-dev", "root": {"path": "rootfs"},
         "process": {"user": {"uid": 0, "gid": 0, "additionalGids": [0]}, "args": ["/wasi-demo-app.wasm"], "cwd": "/",
           "capabilities": {"bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
             "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
             "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]},
           "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": true},
         "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid","noexec","nodev"]},
           {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
           {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
           {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
           {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid","noexec","nodev"]},
           {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]},
           {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]}],
         "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}, "cgroupsPath": "/default/x",
           "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
           "maskedPaths": ["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],
           "readonlyPaths": ["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("policy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Spec Parse(string json) => Spec.Parse(System.Text.Encoding.UTF8.GetBytes(json), "test");

    private static ShimException Refused(string json, bool acceptSeccomp = false) =>
        Assert.Throws<ShimException>(() => SharedSpecPolicy.Apply(Parse(json), acceptSeccomp).Dispose());

    [Fact]
    public void Ctrs_default_spec_is_accepted_with_no_binds_and_a_writable_root()
    {
        using var binds = SharedSpecPolicy.Apply(Parse(CtrDefault), acceptSeccomp: false);
        Assert.Empty(binds.Binds);
        Assert.False(binds.ReadOnlyRoot);
    }

    [Fact]
    public void Cri_file_binds_are_skipped_and_directory_binds_become_preopens_with_their_permission()
    {
        var file = Path.Combine(_dir, "hosts");
        File.WriteAllText(file, "127.0.0.1 localhost\n");
        var data = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        using var binds = SharedSpecPolicy.Apply(Parse($$"""
            {"root": {"path": "rootfs", "readonly": true}, "mounts": [
              {"destination": "/etc/hosts", "type": "bind", "source": "{{file}}", "options": ["rbind", "rprivate", "rw"]},
              {"destination": "/etc/resolv.conf", "type": "bind", "source": "{{file}}", "options": ["rbind", "ro"]},
              {"destination": "/data/", "type": "bind", "source": "{{data}}", "options": ["rbind", "rw"]},
              {"destination": "/config", "source": "{{data}}", "options": ["bind", "rw", "ro"]}]}
            """), acceptSeccomp: false);
        Assert.True(binds.ReadOnlyRoot);
        Assert.Equal([("/data", true), ("/config", false)], binds.Binds.Select(b => (b.GuestPath, b.Writable)));
        // Each preopen names a descriptor of the source, not its path.
        Assert.All(binds.Binds, b => Assert.StartsWith("/proc/self/fd/", b.HostPath));
        Assert.All(binds.Binds, b => Assert.Equal(data, new FileInfo(b.HostPath).LinkTarget));
    }

    [Fact]
    public void A_bind_source_is_opened_once_so_swapping_it_for_a_symlink_changes_nothing()
    {
        var data = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        File.WriteAllText(Path.Combine(data, "marker"), "original");
        using var binds = SharedSpecPolicy.Apply(Parse($$"""
            {"mounts": [{"destination": "/data", "type": "bind", "source": "{{data}}", "options": ["rbind", "ro"]}]}
            """), acceptSeccomp: false);
        Directory.Move(data, data + ".moved");
        var other = Directory.CreateDirectory(Path.Combine(_dir, "other")).FullName;
        File.WriteAllText(Path.Combine(other, "marker"), "swapped");
        File.CreateSymbolicLink(data, other);
        Assert.Equal("original", File.ReadAllText(Path.Combine(binds.Binds[0].HostPath, "marker")));
    }

    [Theory]
    [InlineData("""{"process": {"user": {"uid": 1000, "gid": 0}}}""", "process.user")]
    [InlineData("""{"process": {"user": {"uid": 0, "gid": 0, "additionalGids": [0, 10]}}}""", "process.user.additionalGids")]
    [InlineData("""{"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}}}""", "process.capabilities.bounding")]
    [InlineData("""{"process": {"capabilities": {"ambient": ["CAP_NET_ADMIN"]}}}""", "process.capabilities.ambient")]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}, {"type": "RLIMIT_NPROC", "soft": 10, "hard": 10}]}}""", "process.rlimits[1]")]
    [InlineData("""{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": 64}]}}""", "process.rlimits[0]")]
    [InlineData("""{"process": {"apparmorProfile": "cri-containerd.apparmor.d"}}""", "process.apparmorProfile")]
    [InlineData("""{"process": {"selinuxLabel": "system_u:system_r:container_t:s0"}}""", "process.selinuxLabel")]
    [InlineData("""{"hooks": {"prestart": [{"path": "/bin/true"}]}}""", "hooks")]
    [InlineData("""{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}""", "linux.seccomp")]
    [InlineData("""{"linux": {"devices": [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]}}""", "linux.devices[0]")]
    [InlineData("""{"linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw"}]}}}""", "linux.resources.devices[1]")]
    [InlineData("""{"linux": {"resources": {"devices": [{"allow": true, "access": "rwm"}]}}}""", "linux.resources.devices[0]")]
    [InlineData("""{"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}""", "linux.uidMappings")]
    [InlineData("""{"linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}}""", "linux.namespaces[0] (user)")]
    [InlineData("""{"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}""", "linux.sysctl")]
    [InlineData("""{"linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}}""", "linux.mountLabel")]
    [InlineData("""{"linux": {"readonlyPaths": ["/proc/sys", "/data"]}}""", "linux.readonlyPaths[1]")]
    [InlineData("""{"linux": {"maskedPaths": ["/proc/../etc"]}}""", "linux.maskedPaths[0]")]
    [InlineData("""{"mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]}""", "mounts[0] (/tmp)")]
    [InlineData("""{"mounts": [{"destination": "/proc", "type": "proc"}, {"destination": "/mnt", "type": "overlay", "source": "overlay"}]}""", "mounts[1] (/mnt)")]
    [InlineData("""{"mounts": [{"destination": "relative", "type": "bind", "source": "/tmp"}]}""", "mounts[0] (relative)")]
    [InlineData("""{"mounts": [{"destination": "/", "type": "bind", "source": "/tmp"}]}""", "mounts[0] (/)")]
    [InlineData("""{"mounts": [{"destination": "/data", "type": "bind", "source": "tmp"}]}""", "mounts[0] (/data)")]
    [InlineData("""{"mounts": [{"destination": "/data", "type": "bind", "source": "/nonexistent-shared-spec-source"}]}""", "mounts[0] (/data)")]
    public void Fields_shared_mode_cannot_apply_are_refused_naming_the_field_and_normal_mode(string json, string field)
    {
        var e = Refused(json);
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.StartsWith(field + ":", e.Message);
        if (!field.StartsWith("mounts", StringComparison.Ordinal) || !e.Message.Contains("No such file", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Contains("io.containerd.wasmtime.v1", e.Message);
        }
    }

    [Fact]
    public void A_file_bind_other_than_crIs_is_refused_and_what_was_opened_before_it_is_closed()
    {
        var file = Path.Combine(_dir, "secret");
        File.WriteAllText(file, "x");
        var e = Refused($$"""
            {"mounts": [{"destination": "/data", "type": "bind", "source": "{{_dir}}", "options": ["rbind"]},
              {"destination": "/etc/secret", "type": "bind", "source": "{{file}}", "options": ["rbind"]}]}
            """);
        Assert.StartsWith("mounts[1] (/etc/secret): source", e.Message);
        Assert.Contains("is a file", e.Message);
        Assert.DoesNotContain(_dir, OpenPaths());
    }

    [Fact]
    public void A_bind_source_that_is_a_symlink_is_not_followed()
    {
        var link = Path.Combine(_dir, "link");
        File.CreateSymbolicLink(link, "/etc");
        var e = Refused($$"""{"mounts": [{"destination": "/data", "type": "bind", "source": "{{link}}"}]}""");
        Assert.Contains("a symlink is not followed", e.Message);
    }

    [Fact]
    public void Seccomp_is_accepted_only_when_the_operator_says_so_and_default_device_rules_always()
    {
        const string Json = """
            {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}, "resources": {"devices": [{"allow": false, "access": "rwm"},
              {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}, {"allow": true, "type": "c", "major": 136, "access": "rwm"}]},
              "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]}}
            """;
        Assert.StartsWith("linux.seccomp:", Refused(Json).Message);
        using var binds = SharedSpecPolicy.Apply(Parse(Json), acceptSeccomp: true);
        Assert.Empty(binds.Binds);
    }

    [Fact]
    public void A_proxy_asking_for_a_new_network_namespace_is_refused_and_one_joined_by_path_is_not()
    {
        var e = Assert.Throws<ShimException>(() => SharedSpecPolicy.CheckProxyNetwork(Parse("""{"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}}""")));
        Assert.StartsWith("linux.namespaces[1] (network):", e.Message);
        Assert.Contains("io.containerd.wasmtime.v1", e.Message);
        SharedSpecPolicy.CheckProxyNetwork(Parse("""{"linux": {"namespaces": [{"type": "network", "path": "/run/netns/x"}]}}"""));
        SharedSpecPolicy.CheckProxyNetwork(Parse("""{"linux": {"namespaces": [{"type": "pid"}]}}"""));
    }

    // What this process's descriptors name (other tests run in parallel: a count would be racy, a path is not).
    private static List<string?> OpenPaths() =>
        Directory.GetFiles("/proc/self/fd").Select(fd => { try { return new FileInfo(fd).LinkTarget; } catch (IOException) { return null; } }).ToList();
}
