using System.Text.Json.Nodes;

namespace Stress;

/// <summary>
/// The OCI runtime spec the tool gives every container: what a Linux container needs to start under runc
/// (the usual pseudo filesystems, fresh namespaces, a conservative capability set), which the wasm shim also accepts.
/// </summary>
public static class DefaultSpec
{
    private static readonly string[] Capabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    /// <summary>Builds the spec JSON for container <paramref name="id"/> in <paramref name="ns"/>.</summary>
    /// <param name="ns">The containerd namespace (the cgroup parent).</param>
    /// <param name="id">The container id.</param>
    /// <param name="args">The process arguments.</param>
    /// <param name="env">The process environment; a default PATH is added when it has none.</param>
    /// <param name="cwd">The process working folder.</param>
    /// <param name="rootPath">The root filesystem: relative to the bundle (containerd mounts the snapshot at "rootfs") or absolute.</param>
    public static string Build(string ns, string id, IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd, string rootPath = "rootfs")
    {
        var environment = env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))
            ? env
            : [.. env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
        var spec = new JsonObject
        {
            ["ociVersion"] = "1.1.0",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                ["args"] = Array(args),
                ["env"] = Array(environment),
                ["cwd"] = cwd,
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = Array(Capabilities),
                    ["effective"] = Array(Capabilities),
                    ["permitted"] = Array(Capabilities),
                },
                ["rlimits"] = new JsonArray(new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = 1024, ["soft"] = 1024 }),
                ["noNewPrivileges"] = true,
            },
            ["root"] = new JsonObject { ["path"] = rootPath },
            ["mounts"] = new JsonArray(
                Mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
                Mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
                Mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
                Mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
                Mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
                Mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
                Mount("/run", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k")),
            ["linux"] = new JsonObject
            {
                // Same cgroup layout as ctr, so tools that clean up a namespace's cgroups find these too.
                ["cgroupsPath"] = $"/{ns}/{id}",
                ["resources"] = new JsonObject
                {
                    ["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" }),
                },
                ["namespaces"] = new JsonArray(
                    Namespace("pid"), Namespace("ipc"), Namespace("uts"), Namespace("mount"), Namespace("network")),
                ["maskedPaths"] = Array([
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
                ]),
                ["readonlyPaths"] = Array([
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
                ]),
            },
        };
        return spec.ToJsonString();
    }

    private static JsonArray Array(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    private static JsonObject Mount(string destination, string type, string source, params string[] options) => new()
    {
        ["destination"] = destination,
        ["type"] = type,
        ["source"] = source,
        ["options"] = Array(options),
    };

    private static JsonObject Namespace(string type) => new() { ["type"] = type };
}
