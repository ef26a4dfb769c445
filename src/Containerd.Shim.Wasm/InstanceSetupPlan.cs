using System.Globalization;
using System.Text;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Turns the OCI spec's namespaces, bind mounts, rlimits, user, capabilities and <c>noNewPrivileges</c> into the
/// setup plan the native constructor of the instance process (<c>native/instance_setup.c</c>) applies before .NET
/// starts. The plan is plain text, one tab-separated directive a line, so the C side never parses JSON; everything
/// that needs judgement (names to numbers, symlinks in the rootfs, mount point creation) happens here, in the shim.
/// </summary>
internal static class InstanceSetupPlan
{
    /// <summary>The instance process's fd that carries the plan at spawn, and config.json after the constructor.</summary>
    public const int Fd = 5;

    /// <summary>The first line of every plan.</summary>
    public const string Header = "wasm-instance-setup 1";

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

    /// <summary>
    /// Builds the plan for a container, creating the mount points of its bind mounts inside
    /// <paramref name="rootfs"/> (as runc does), after resolving their destinations there.
    /// </summary>
    /// <exception cref="ShimException">InvalidArgument (NotFound for a missing bind source) naming the spec field
    /// and the reason.</exception>
    public static string Build(Spec spec, string rootfs)
    {
        var plan = new StringBuilder(Header).Append('\n');
        var created = new HashSet<string>();
        foreach (var ns in spec.Linux?.Namespaces ?? [])
        {
            // A pid namespace only applies to children (unshare) and a wasm guest has no process API; time likewise
            // only applies to children. Both are accepted and not acted on (docs/architecture.md).
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

        var binds = BindMounts(spec, rootfs);
        if (binds.Count > 0)
        {
            // Binds only ever happen in a private mount namespace, even when the spec asks for none or joins one.
            created.Add("mnt");
        }
        foreach (var type in created.Order(StringComparer.Ordinal))
        {
            Line(plan, "new", type);
        }
        if (created.Contains("uts") && !string.IsNullOrEmpty(spec.Hostname))
        {
            Line(plan, "hostname", Field(spec.Hostname, "hostname"));
        }
        foreach (var bind in binds)
        {
            plan.Append(bind).Append('\n');
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
        // No capabilities in the spec means none (a wasm guest cannot use any): stricter than runc, which then
        // leaves them unchanged.
        var caps = process?.Capabilities;
        Line(plan, "caps", Mask(caps?.Bounding, "bounding"), Mask(caps?.Effective, "effective"),
            Mask(caps?.Permitted, "permitted"), Mask(caps?.Inheritable, "inheritable"), Mask(caps?.Ambient, "ambient"));
        if (process?.NoNewPrivileges == true)
        {
            Line(plan, "nnp");
        }
        return plan.ToString();
    }

    // The bind lines, in order: a read-only rootfs first (binds below then land on top of it), then spec.mounts.
    private static List<string> BindMounts(Spec spec, string rootfs)
    {
        var lines = new List<string>();
        if (spec.Root?.Readonly == true)
        {
            lines.Add($"bind\tro\t{Field(rootfs, "root.path")}\t{Field(rootfs, "root.path")}");
        }
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
            if (!m.Destination.StartsWith('/'))
            {
                throw Invalid($"{what}: the destination must be an absolute path in the container");
            }
            var isDir = Directory.Exists(m.Source);
            if (!isDir && !File.Exists(m.Source))
            {
                throw new ShimException(StatusCode.NotFound, $"{what}: source {m.Source}: no such file or directory");
            }
            string target;
            try
            {
                target = RootfsPath.Resolve(rootfs, m.Destination).HostPath;
            }
            catch (EntrypointException e)
            {
                throw Invalid($"{what}: destination {e.Message["entrypoint ".Length..]}");
            }
            CreateMountPoint(target, isDir, what);
            var readOnly = options.LastOrDefault(o => o is "ro" or "rw") == "ro";
            var flags = (options.Contains("rbind") ? "r" : "-") + (readOnly ? "o" : "-");
            lines.Add($"bind\t{flags}\t{Field(m.Source, what)}\t{Field(target, what)}");
        }
        return lines;
    }

    private static void CreateMountPoint(string target, bool isDir, string what)
    {
        try
        {
            if (isDir)
            {
                Directory.CreateDirectory(target);
            }
            else if (!File.Exists(target) && !Directory.Exists(target))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using (File.Create(target))
                {
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.FailedPrecondition, $"{what}: cannot create the mount point: {e.Message}", e);
        }
    }

    private static string Mask(List<string>? names, string set)
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
        return mask.ToString("x", CultureInfo.InvariantCulture);
    }

    private static string Field(string value, string what) =>
        value.AsSpan().IndexOfAny('\t', '\n', '\0') < 0
            ? value
            : throw Invalid($"{what}: \"{value}\" contains a tab, newline or NUL");

    private static string Num(ulong n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static void Line(StringBuilder plan, params string[] fields) => plan.AppendJoin('\t', fields).Append('\n');

    private static ShimException Invalid(string message) => new(StatusCode.InvalidArgument, message);
}
