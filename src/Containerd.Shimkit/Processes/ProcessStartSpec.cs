using System.Runtime.InteropServices;

namespace Containerd.Shimkit.Processes;

/// <summary>What to run in a child process spawned by <see cref="Reaper.Spawn"/>.</summary>
public sealed class ProcessStartSpec
{
    /// <summary>Path of the executable (not searched in PATH).</summary>
    public required string Path { get; init; }

    /// <summary>The argument vector, including argv[0].</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary>The environment as <c>NAME=value</c> entries; null inherits this process's environment.</summary>
    public IReadOnlyList<string>? Env { get; init; }

    /// <summary>The child's working directory; null keeps this process's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// Child fd number → handle placed there. Only these descriptors reach the child; stdio (0, 1, 2) that is not
    /// mapped is opened on <c>/dev/null</c>. The handles stay owned by the caller.
    /// </summary>
    public IReadOnlyDictionary<int, SafeHandle>? Files { get; init; }

    /// <summary>Starts the child in a new session (setsid), detached from the caller's terminal and process group.</summary>
    public bool NewSession { get; init; }
}
