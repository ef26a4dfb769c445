namespace Containerd.Shim.Wasm;

/// <summary>
/// The program's standard streams. In an instance process they are always file descriptors 0, 1 and 2, which the
/// shim wired to the container's FIFOs (or /dev/null) when it spawned the process; an engine inherits them so
/// every byte goes straight to containerd and is written by the time the process exits.
/// </summary>
public sealed class Stdio
{
    /// <summary>The standard streams of the current process.</summary>
    public static Stdio Inherited { get; } = new();

    private Stdio()
    {
    }

    /// <summary>The descriptor of standard input.</summary>
    public int Stdin => 0;

    /// <summary>The descriptor of standard output.</summary>
    public int Stdout => 1;

    /// <summary>The descriptor of standard error.</summary>
    public int Stderr => 2;
}
