using System.Globalization;
using System.Text;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Turns the OCI spec's namespaces, mounts, masked and read-only paths, rlimits, user, capabilities and
/// <c>noNewPrivileges</c> into the setup plan the native constructor of the instance process
/// (<c>native/instance_setup.c</c>) applies before .NET starts. The plan is plain text, one tab-separated directive a
/// line, so the C side never parses JSON; names become numbers here and the capability sets are the ones an execve
/// would leave. Nothing here looks inside the rootfs: every path in it is resolved by the constructor, by descriptor,
/// inside the instance's own mount namespace and in mount order, so an earlier mount cannot redirect a later one.
/// </summary>
internal static class InstanceSetupPlan
{
    /// <summary>The instance process's fd that carries the plan at spawn, and config.json after the constructor.</summary>
    public const int Fd = 5;

    /// <summary>The first line of every plan.</summary>
    public const string Header = "wasm-instance-setup 2";

    // OCI namespace type → the plan's (setns/unshare) name. pid and time are left out on purpose, see Build.
    private static readonly Dictionary<string, string> Namespaces = new()
    {
        ["network"] = "net",
        ["mount"] = "mnt",
        ["ipc"] = "ipc",
        ["uts"] = "uts",
        ["cgroup"] = "cgroup",
        ["user"] = "user",
    };

    // <linux/capability.h> numbering.
    private static readonly string[] CapabilityNames =
    [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ];

    // <sys/resource.h> numbering.
    private static readonly string[] RlimitNames =
    [
        "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING",
        "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
    ];

    /// <summary>Builds the plan for a container. <paramref name="cgroupDirectories"/> are the folders of the
    /// container's cgroup, which the instance process joins before it touches anything of the container.</summary>
    /// <exception cref="ShimException">InvalidArgument naming the spec field and the reason.</exception>
    public static string Build(Spec spec, IReadOnlyList<string>? cgroupDirectories = null)
    {
        var plan = new StringBuilder(Header).Append('\n');
        // The instance always gets a mount namespace of its own (it pivots into the rootfs), even when the spec asks
        // for none or joins one: joined, it is then unshared, so nothing mounted here reaches anyone else.
        var created = new HashSet<string> { "mnt" };
        foreach (var ns in spec.Linux?.Namespaces ?? [])
        {
            // A pid namespace only applies to children (unshare) and a wasm guest has no process API; time likewise
            // only applies to children. Both are accepted and not acted on (docs/security.md).
            if (ns.Type is "pid" or "time")
            {
                continue;
            }
            if (!Namespaces.TryGetValue(ns.Type, out var type))
            {
                throw Invalid($"linux.namespaces: unknown namespace type \"{ns.Type}\"");
            }
            if (string.IsNullOrEmpty(ns.Path))
            {
                if (type == "user")
                {
                    throw Invalid("linux.namespaces: creating a user namespace is not supported (join one by path)");
                }
                created.Add(type);
            }
            else
            {
                Line(plan, "join", type, Field(ns.Path, "linux.namespaces path"));
            }
        }
        foreach (var type in created.Order(StringComparer.Ordinal))
        {
            Line(plan, "new", type);
        }
        if (created.Contains("uts") && !string.IsNullOrEmpty(spec.Hostname))
        {
            Line(plan, "hostname", Field(spec.Hostname, "hostname"));
        }
        foreach (var bind in BindMounts(spec))
        {
            plan.Append(bind).Append('\n');
        }
        if (spec.Root?.Readonly == true)
        {
            Line(plan, "rootfs", "ro");
        }
        foreach (var (path, i) in (spec.Linux?.MaskedPaths ?? []).Select((p, i) => (p, i)))
        {
            Line(plan, "mask", ContainerPath(path, $"linux.maskedPaths[{i}]"));
        }
        foreach (var (path, i) in (spec.Linux?.ReadonlyPaths ?? []).Select((p, i) => (p, i)))
        {
            Line(plan, "readonly", ContainerPath(path, $"linux.readonlyPaths[{i}]"));
        }
        foreach (var dir in cgroupDirectories ?? [])
        {
            Line(plan, "cgroup", Field(Path.Combine(dir, "cgroup.procs"), "cgroup"));
        }

        var process = spec.Process;
        foreach (var r in process?.Rlimits ?? [])
        {
            var name = r.Type.StartsWith("RLIMIT_", StringComparison.Ordinal) ? r.Type["RLIMIT_".Length..] : "";
            var number = Array.IndexOf(RlimitNames, name);
            if (number < 0)
            {
                throw Invalid($"process.rlimits: unknown rlimit \"{r.Type}\"");
            }
            if (r.Soft > r.Hard)
            {
                throw Invalid($"process.rlimits: {r.Type}: soft limit {r.Soft} is above the hard limit {r.Hard}");
            }
            Line(plan, "rlimit", Num(number), Num(r.Soft), Num(r.Hard));
        }
        if (process?.User?.Umask is { } umask)
        {
            Line(plan, "umask", Convert.ToString(umask, 8));
        }
        var user = process?.User ?? new User();
        var groups = string.Join(',', (user.AdditionalGids ?? []).Select(g => Num(g)));
        Line(plan, groups.Length > 0 ? ["user", Num(user.Uid), Num(user.Gid), groups] : ["user", Num(user.Uid), Num(user.Gid)]);
        var caps = Capabilities.AfterExec(
            Mask(process?.Capabilities?.Bounding, "bounding"), Mask(process?.Capabilities?.Effective, "effective"),
            Mask(process?.Capabilities?.Permitted, "permitted"), Mask(process?.Capabilities?.Inheritable, "inheritable"),
            Mask(process?.Capabilities?.Ambient, "ambient"), user.Uid == 0, process?.NoNewPrivileges == true);
        Line(plan, "caps", Hex(caps.Bounding), Hex(caps.Effective), Hex(caps.Permitted), Hex(caps.Inheritable),
            Hex(caps.Ambient), Hex(caps.RaiseEffective), Hex(caps.RaisePermitted));
        if (process?.NoNewPrivileges == true)
        {
            Line(plan, "nnp");
        }
        return plan.ToString();
    }

    // bind <flags> <source> <destination> <label>, in spec order. Flags: r recursive, o read-only (of the whole
    // bound tree: MS_REMOUNT cannot do that for submounts, mount_setattr can), s nosuid, d nodev, x noexec.
    private static List<string> BindMounts(Spec spec)
    {
        var lines = new List<string>();
        var mounts = spec.Mounts ?? [];
        for (var i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            var options = m.Options ?? [];
            // proc, sysfs, tmpfs, devpts, mqueue… of the default spec mean nothing to a wasm guest: skipped.
            if (m.Type != "bind" && !options.Contains("bind") && !options.Contains("rbind"))
            {
                continue;
            }
            var what = $"mounts[{i}] ({m.Destination})";
            if (string.IsNullOrEmpty(m.Source) || !m.Source.StartsWith('/'))
            {
                throw Invalid($"{what}: the source must be an absolute host path, not \"{m.Source}\"");
            }
            var destination = ContainerPath(m.Destination, what);
            var flags = new StringBuilder();
            flags.Append(options.Contains("rbind") ? 'r' : '-');
            flags.Append(Last(options, "ro", "rw") == "ro" || options.Contains("rro") ? 'o' : '-');
            flags.Append(Last(options, "nosuid", "suid") == "nosuid" ? 's' : '-');
            flags.Append(Last(options, "nodev", "dev") == "nodev" ? 'd' : '-');
            flags.Append(Last(options, "noexec", "exec") == "noexec" ? 'x' : '-');
            lines.Add($"bind\t{flags}\t{Field(m.Source, what)}\t{destination}\t{Field(what, what)}");
        }
        return lines;
    }

    private static string? Last(List<string> options, string on, string off) => options.LastOrDefault(o => o == on || o == off);

    // An absolute container path, and one whose own ".." do not climb above the root: what the constructor then
    // resolves inside the rootfs.
    private static string ContainerPath(string path, string what)
    {
        if (!path.StartsWith('/'))
        {
            throw Invalid($"{what}: the destination must be an absolute path in the container, not \"{path}\"");
        }
        var depth = 0;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            depth += part == ".." ? -1 : part == "." ? 0 : 1;
            if (depth < 0)
            {
                throw Invalid($"{what}: destination {path}: escapes the rootfs (\"..\" above the container's root)");
            }
        }
        return Field(path, what);
    }

    private static ulong Mask(List<string>? names, string set)
    {
        ulong mask = 0;
        foreach (var name in names ?? [])
        {
            var bit = Array.IndexOf(CapabilityNames, name.StartsWith("CAP_", StringComparison.Ordinal) ? name[4..] : "");
            if (bit < 0)
            {
                throw Invalid($"process.capabilities.{set}: unknown capability \"{name}\"");
            }
            mask |= 1UL << bit;
        }
        return mask;
    }

    private static string Hex(ulong mask) => mask.ToString("x", CultureInfo.InvariantCulture);

    private static string Field(string value, string what) =>
        value.AsSpan().IndexOfAny('\t', '\n', '\0') < 0
            ? value
            : throw Invalid($"{what}: \"{value}\" contains a tab, newline or NUL");

    private static string Num(ulong n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static void Line(StringBuilder plan, params string[] fields) => plan.AppendJoin('\t', fields).Append('\n');

    private static ShimException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
