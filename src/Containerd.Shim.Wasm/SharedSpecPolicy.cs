using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// What a host that runs every guest in one process (shared mode, <c>containerd-wasmtimed</c>) does with a container's
/// OCI spec: the parts it can honour become preopens (<c>root.readonly</c>, bind mounts), the parts of containerd's and
/// CRI's default specs that mean nothing to a wasm guest are accepted, and everything else is refused at Create,
/// naming the field, rather than dropped: the daemon has no per-guest identity, capabilities, rlimits, seccomp filter,
/// devices, user namespace, sysctls, hooks or security labels to apply them with. Normal mode
/// (<c>io.containerd.wasmtime.v1</c>) applies all of them.
/// </summary>
public static class SharedSpecPolicy
{
    /// <summary>Set to <c>accept</c> in the daemon's environment to run containers whose spec has a
    /// <c>linux.seccomp</c> profile although no filter is applied to them (the operator accepts the daemon's own
    /// confinement in its place). Unset, such a container is refused.</summary>
    public const string SeccompVariable = "CONTAINERD_WASMTIMED_SECCOMP";

    private const string UseNormalMode = "shared mode cannot apply it; run the container with io.containerd.wasmtime.v1 (normal mode)";

    // What containerd's default spec (ctr run) and CRI give a container that asks for nothing.
    private static readonly HashSet<string> DefaultCapabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    // The non-bind mounts of those default specs, by type and destination; none of them is visible to a guest.
    private static readonly HashSet<(string Type, string Destination)> DefaultMounts =
    [
        ("proc", "/proc"), ("tmpfs", "/dev"), ("devpts", "/dev/pts"), ("tmpfs", "/dev/shm"), ("shm", "/dev/shm"),
        ("mqueue", "/dev/mqueue"), ("sysfs", "/sys"), ("tmpfs", "/run"), ("cgroup", "/sys/fs/cgroup"), ("cgroup2", "/sys/fs/cgroup"),
    ];

    // The files CRI always bind into a container; a guest reads neither, and they are not directories to preopen.
    private static readonly HashSet<string> CriFileBinds = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/termination-log"];

    // The device nodes of containerd's default device list (path, type, major, minor).
    private static readonly HashSet<(string Path, string Type, long Major, long Minor)> DefaultDevices =
    [
        ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7), ("/dev/random", "c", 1, 8),
        ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0), ("/dev/console", "c", 5, 1), ("/dev/ptmx", "c", 5, 2),
        ("/dev/net/tun", "c", 10, 200),
    ];

    // The device cgroup allow rules of that list (type, major, minor; null is *), plus "c *:* m" and "b *:* m".
    private static readonly HashSet<(string Type, long? Major, long? Minor)> DefaultDeviceRules =
    [
        ("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), ("c", 5, 0), ("c", 5, 1), ("c", 5, 2),
        ("c", 136, null), ("c", 10, 200), ("c", null, null), ("b", null, null),
    ];

    /// <summary>
    /// Checks <paramref name="spec"/> and opens its bind mounts' sources, by descriptor, now: a source a tenant swaps
    /// for a symlink later changes nothing the guest sees. Nothing is left open when this throws.
    /// </summary>
    /// <param name="spec">The container's spec.</param>
    /// <param name="acceptSeccomp">Whether a <c>linux.seccomp</c> profile is accepted unapplied (see
    /// <see cref="SeccompVariable"/>).</param>
    /// <exception cref="ShimException">InvalidArgument naming the field and why shared mode refuses it.</exception>
    public static SharedSpecBinds Apply(Spec spec, bool acceptSeccomp)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Check(spec, acceptSeccomp);
        var binds = new List<WasiPreopen>();
        try
        {
            var mounts = spec.Mounts ?? [];
            for (var i = 0; i < mounts.Count; i++)
            {
                if (Bind(mounts[i], $"mounts[{i}] ({UntrustedText.Excerpt(mounts[i].Destination)})") is { } bind)
                {
                    binds.RemoveAll(b => b.GuestPath == bind.GuestPath && Closed(b));
                    binds.Add(bind);
                }
            }
        }
        catch
        {
            WasiPreopens.Close(binds);
            throw;
        }
        return new SharedSpecBinds(spec.Root?.Readonly == true, binds);
    }

    /// <summary>Whether the daemon's environment accepts seccomp profiles unapplied.</summary>
    public static bool SeccompAcceptedByEnvironment() =>
        Environment.GetEnvironmentVariable(SeccompVariable) is { } v && v.Trim() == "accept";

    /// <summary>
    /// Refuses a wasi:http proxy whose spec asks for a new network namespace: the daemon listens in the namespace the
    /// spec names by path, and has no way to make one (normal mode does).
    /// </summary>
    /// <exception cref="ShimException">InvalidArgument naming <c>linux.namespaces[network]</c>.</exception>
    public static void CheckProxyNetwork(Spec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var namespaces = spec.Linux?.Namespaces ?? [];
        for (var i = 0; i < namespaces.Count; i++)
        {
            if (namespaces[i].Type == "network" && string.IsNullOrEmpty(namespaces[i].Path))
            {
                throw new ShimException(StatusCode.InvalidArgument,
                    $"linux.namespaces[{i}] (network): asks for a new network namespace, which the daemon cannot make (its server " +
                    "would listen in the host's); join one by path (a CRI pod's, or ctr --with-ns network:PATH), use the host's " +
                    "network (no network entry), or run the container with io.containerd.wasmtime.v1 (normal mode)");
            }
        }
    }

    private static void Check(Spec spec, bool acceptSeccomp)
    {
        var process = spec.Process;
        if (process?.User is { } user)
        {
            if (user.Uid != 0 || user.Gid != 0)
            {
                throw Refused("process.user", $"uid {user.Uid} gid {user.Gid}: every guest runs as the daemon's identity;");
            }
            if (user.AdditionalGids?.FirstOrDefault(g => g != 0) is { } gid and not 0)
            {
                throw Refused("process.user.additionalGids", $"group {gid}: every guest runs with the daemon's groups;");
            }
        }
        CheckCapabilities(process?.Capabilities);
        var rlimits = process?.Rlimits ?? [];
        for (var i = 0; i < rlimits.Count; i++)
        {
            var r = rlimits[i];
            if (r is not { Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024 })
            {
                throw Refused($"process.rlimits[{i}]", $"{UntrustedText.Excerpt(r.Type)} {r.Soft}/{r.Hard}: only containerd's default RLIMIT_NOFILE 1024/1024 is accepted;");
            }
        }
        if (!string.IsNullOrEmpty(process?.ApparmorProfile))
        {
            throw Refused("process.apparmorProfile", $"\"{UntrustedText.Excerpt(process.ApparmorProfile)}\": no profile is applied per guest;");
        }
        if (!string.IsNullOrEmpty(process?.SelinuxLabel))
        {
            throw Refused("process.selinuxLabel", $"\"{UntrustedText.Excerpt(process.SelinuxLabel)}\": no label is applied per guest;");
        }
        if (spec.Hooks is { ValueKind: System.Text.Json.JsonValueKind.Object } hooks && hooks.EnumerateObject().Any(h => h.Value.ValueKind == System.Text.Json.JsonValueKind.Array && h.Value.GetArrayLength() > 0))
        {
            throw Refused("hooks", "no hook is run for a guest of the daemon;");
        }
        CheckMounts(spec.Mounts ?? []);
        if (spec.Linux is { } linux)
        {
            CheckLinux(linux, acceptSeccomp);
        }
    }

    private static void CheckCapabilities(LinuxCapabilities? caps)
    {
        foreach (var (set, names) in new[]
                 {
                     ("bounding", caps?.Bounding), ("effective", caps?.Effective), ("permitted", caps?.Permitted),
                     ("inheritable", caps?.Inheritable), ("ambient", caps?.Ambient),
                 })
        {
            if (names?.FirstOrDefault(n => !DefaultCapabilities.Contains(n)) is { } extra)
            {
                throw Refused($"process.capabilities.{set}", $"{UntrustedText.Excerpt(extra)} is beyond containerd's default set;");
            }
        }
    }

    private static void CheckMounts(List<Mount> mounts)
    {
        for (var i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            if (IsBind(m))
            {
                continue;
            }
            var destination = m.Destination.Length > 1 ? m.Destination.TrimEnd('/') : m.Destination;
            if (!DefaultMounts.Contains((m.Type ?? "", destination)))
            {
                throw Refused($"mounts[{i}] ({UntrustedText.Excerpt(m.Destination)})",
                    $"a {UntrustedText.Excerpt(m.Type ?? "typeless")} mount is not one of the default spec's and only bind mounts become a guest's directories;");
            }
        }
    }

    private static void CheckLinux(Linux linux, bool acceptSeccomp)
    {
        if (linux.Seccomp is not null && !acceptSeccomp)
        {
            throw Refused("linux.seccomp", $"the daemon applies no per-guest seccomp filter (set {SeccompVariable}=accept in the daemon's environment to run such containers unfiltered);");
        }
        if (linux.Devices is { Count: > 0 } devices)
        {
            for (var i = 0; i < devices.Count; i++)
            {
                var d = devices[i];
                if (!DefaultDevices.Contains((d.Path, d.Type, d.Major, d.Minor)))
                {
                    throw Refused($"linux.devices[{i}]", $"{UntrustedText.Excerpt(d.Path)}: no device is created for a guest;");
                }
            }
        }
        var rules = linux.Resources?.Devices ?? [];
        for (var i = 0; i < rules.Count; i++)
        {
            var r = rules[i];
            if (r.Allow && !DefaultDeviceRules.Contains((r.Type ?? "a", r.Major, r.Minor)))
            {
                throw Refused($"linux.resources.devices[{i}]",
                    $"allows {r.Type ?? "a"} {r.Major?.ToString() ?? "*"}:{r.Minor?.ToString() ?? "*"}, beyond the default rules;");
            }
        }
        if (linux.UidMappings is { Count: > 0 })
        {
            throw Refused("linux.uidMappings", "the daemon has no user namespace per guest;");
        }
        if (linux.GidMappings is { Count: > 0 })
        {
            throw Refused("linux.gidMappings", "the daemon has no user namespace per guest;");
        }
        var namespaces = linux.Namespaces ?? [];
        for (var i = 0; i < namespaces.Count; i++)
        {
            if (namespaces[i].Type == "user")
            {
                throw Refused($"linux.namespaces[{i}] (user)", "the daemon has no user namespace per guest;");
            }
        }
        if (linux.Sysctl is { Count: > 0 } sysctl)
        {
            throw Refused("linux.sysctl", $"{UntrustedText.Excerpt(sysctl.Keys.First())}: no kernel parameter is set for a guest;");
        }
        if (!string.IsNullOrEmpty(linux.MountLabel))
        {
            throw Refused("linux.mountLabel", $"\"{UntrustedText.Excerpt(linux.MountLabel)}\": no label is applied per guest;");
        }
        // Masked and read-only paths of the default specs are all under /proc and /sys, which no guest sees; one
        // elsewhere would be a path of the rootfs the daemon leaves visible or writable.
        foreach (var (field, paths) in new[] { ("linux.maskedPaths", linux.MaskedPaths), ("linux.readonlyPaths", linux.ReadonlyPaths) })
        {
            var list = paths ?? [];
            for (var i = 0; i < list.Count; i++)
            {
                if (!IsUnder(list[i], "/proc") && !IsUnder(list[i], "/sys"))
                {
                    throw Refused($"{field}[{i}]", $"{UntrustedText.Excerpt(list[i])} is not under /proc or /sys, so it would be visible to the guest;");
                }
            }
        }
    }

    private static bool IsUnder(string path, string dir) =>
        !path.Split('/').Contains("..") && (path == dir || path.StartsWith(dir + "/", StringComparison.Ordinal));

    private static bool IsBind(Mount m) =>
        m.Type == "bind" || (m.Options ?? []).Any(o => o is "bind" or "rbind");

    // A bind's source as a preopen at its destination, or null for one of CRI's file binds.
    private static WasiPreopen? Bind(Mount m, string what)
    {
        if (!IsBind(m))
        {
            return null;
        }
        var destination = m.Destination.Length > 1 ? m.Destination.TrimEnd('/') : m.Destination;
        if (!destination.StartsWith('/') || destination.Split('/').Any(p => p is "." or ".."))
        {
            throw Refused(what, "the destination must be an absolute path without . or ..;");
        }
        if (destination == "/")
        {
            throw Refused(what, "a bind over the container's root;");
        }
        if (string.IsNullOrEmpty(m.Source) || !m.Source.StartsWith('/'))
        {
            throw Refused(what, $"the source must be an absolute host path, not \"{UntrustedText.Excerpt(m.Source ?? "")}\";");
        }
        // O_PATH|O_NOFOLLOW: the source as it is now; the preopen reopens this descriptor, never the path.
        var fd = Sys.Open(m.Source, Sys.O_PATH | Sys.O_NOFOLLOW | Sys.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"{what}: source {UntrustedText.Excerpt(m.Source)}: {Sys.Error(Marshal.GetLastPInvokeError())}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        RootfsPath.Kind kind;
        try
        {
            kind = RootfsPath.KindOf(handle);
        }
        catch (IOException e)
        {
            handle.Dispose();
            throw new ShimException(StatusCode.InvalidArgument, $"{what}: source {UntrustedText.Excerpt(m.Source)}: {e.Message}");
        }
        if (kind == RootfsPath.Kind.Directory)
        {
            var options = m.Options ?? [];
            var readOnly = options.LastOrDefault(o => o is "ro" or "rw") == "ro" || options.Contains("rro");
            return new WasiPreopen($"/proc/self/fd/{fd}", destination, !readOnly) { Handle = handle };
        }
        handle.Dispose();
        if (kind == RootfsPath.Kind.File && CriFileBinds.Contains(destination))
        {
            return null;
        }
        throw Refused(what, kind == RootfsPath.Kind.File
            ? $"source {UntrustedText.Excerpt(m.Source)} is a file; only directories become a guest's preopens;"
            : $"source {UntrustedText.Excerpt(m.Source)} is neither a directory nor a regular file (a symlink is not followed);");
    }

    private static bool Closed(WasiPreopen p)
    {
        p.Handle?.Dispose();
        return true;
    }

    private static ShimException Refused(string field, string reason) =>
        new(StatusCode.InvalidArgument, $"{field}: {reason} {UseNormalMode}");
}
