using System.Text.Json.Serialization;

namespace Containerd.Shimkit.Oci;

/// <summary>A seccomp profile (<c>linux.seccomp</c> in config.json).</summary>
public sealed class LinuxSeccomp
{
    /// <summary>The action for a system call no rule matches, e.g. <c>SCMP_ACT_ERRNO</c>.</summary>
    public string DefaultAction { get; set; } = "";

    /// <summary>The errno <see cref="DefaultAction"/> returns, when it is SCMP_ACT_ERRNO or SCMP_ACT_TRACE.</summary>
    public uint? DefaultErrnoRet { get; set; }

    /// <summary>Architectures the profile covers besides the native one, e.g. <c>SCMP_ARCH_X86</c>.</summary>
    public List<string>? Architectures { get; set; }

    /// <summary>Filter flags, e.g. <c>SECCOMP_FILTER_FLAG_LOG</c>.</summary>
    public List<string>? Flags { get; set; }

    /// <summary>A Unix socket a seccomp agent listens on (SCMP_ACT_NOTIFY).</summary>
    public string? ListenerPath { get; set; }

    /// <summary>Opaque data handed to the agent at <see cref="ListenerPath"/>.</summary>
    public string? ListenerMetadata { get; set; }

    /// <summary>The rules, in order.</summary>
    public List<LinuxSyscall>? Syscalls { get; set; }
}

/// <summary>One rule: system calls by name, an action, and optional argument conditions.</summary>
public sealed class LinuxSyscall
{
    /// <summary>The system calls the rule is about.</summary>
    public List<string>? Names { get; set; }

    /// <summary>The action, e.g. <c>SCMP_ACT_ALLOW</c>.</summary>
    public string Action { get; set; } = "";

    /// <summary>The errno of SCMP_ACT_ERRNO or SCMP_ACT_TRACE.</summary>
    public uint? ErrnoRet { get; set; }

    /// <summary>Argument conditions, all of which must hold.</summary>
    public List<LinuxSeccompArg>? Args { get; set; }
}

/// <summary>A condition on one system call argument.</summary>
public sealed class LinuxSeccompArg
{
    /// <summary>The argument's index (0-5).</summary>
    public uint Index { get; set; }

    /// <summary>The value compared against.</summary>
    public ulong Value { get; set; }

    /// <summary>The second value (the mask of SCMP_CMP_MASKED_EQ).</summary>
    public ulong ValueTwo { get; set; }

    /// <summary>The comparison, e.g. <c>SCMP_CMP_EQ</c>.</summary>
    [JsonPropertyName("op")]
    public string Op { get; set; } = "";
}
