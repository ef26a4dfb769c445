namespace Containerd.Shimkit.Oci;

/// <summary>The container's init process (<c>process</c> in config.json).</summary>
public sealed class Process
{
    /// <summary>Whether a pseudo-terminal is attached.</summary>
    public bool Terminal { get; set; }

    /// <summary>The user the process runs as.</summary>
    public User? User { get; set; }

    /// <summary>The argument vector; for wasm, <c>args[0]</c> names the module and function.</summary>
    public List<string>? Args { get; set; }

    /// <summary>The environment as <c>NAME=value</c> entries.</summary>
    public List<string>? Env { get; set; }

    /// <summary>The working directory, inside the container.</summary>
    public string? Cwd { get; set; }

    /// <summary>Linux capabilities.</summary>
    public LinuxCapabilities? Capabilities { get; set; }

    /// <summary>Resource limits.</summary>
    public List<PosixRlimit>? Rlimits { get; set; }

    /// <summary>Whether the process may not gain privileges.</summary>
    public bool NoNewPrivileges { get; set; }

    /// <summary>The AppArmor profile of the process.</summary>
    public string? ApparmorProfile { get; set; }

    /// <summary>The SELinux label of the process.</summary>
    public string? SelinuxLabel { get; set; }
}

/// <summary>The identity the process runs with.</summary>
public sealed class User
{
    /// <summary>User id.</summary>
    public uint Uid { get; set; }

    /// <summary>Group id.</summary>
    public uint Gid { get; set; }

    /// <summary>Supplementary group ids.</summary>
    public List<uint>? AdditionalGids { get; set; }

    /// <summary>File mode creation mask.</summary>
    public uint? Umask { get; set; }
}

/// <summary>Capability sets of the process.</summary>
public sealed class LinuxCapabilities
{
    /// <summary>Bounding set.</summary>
    public List<string>? Bounding { get; set; }

    /// <summary>Effective set.</summary>
    public List<string>? Effective { get; set; }

    /// <summary>Inheritable set.</summary>
    public List<string>? Inheritable { get; set; }

    /// <summary>Permitted set.</summary>
    public List<string>? Permitted { get; set; }

    /// <summary>Ambient set.</summary>
    public List<string>? Ambient { get; set; }
}

/// <summary>One resource limit (setrlimit).</summary>
public sealed class PosixRlimit
{
    /// <summary>The limit, e.g. <c>RLIMIT_NOFILE</c>.</summary>
    public string Type { get; set; } = "";

    /// <summary>Hard limit.</summary>
    public ulong Hard { get; set; }

    /// <summary>Soft limit.</summary>
    public ulong Soft { get; set; }
}
