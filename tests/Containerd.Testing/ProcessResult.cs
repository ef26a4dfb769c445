namespace Containerd.Testing;

/// <summary>The outcome of a finished child process: its exit code and everything it wrote.</summary>
/// <param name="ExitCode">The process exit code.</param>
/// <param name="Stdout">Everything written to standard output.</param>
/// <param name="Stderr">Everything written to standard error.</param>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>True when the process exited with code 0.</summary>
    public bool Succeeded => ExitCode == 0;

    /// <summary>A readable dump of the outcome, for failure messages.</summary>
    public override string ToString() =>
        $"exit code {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}
