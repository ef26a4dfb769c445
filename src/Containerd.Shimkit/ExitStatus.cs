namespace Containerd.Shimkit;

/// <summary>How a process ended.</summary>
/// <param name="ExitCode">The exit code; death by signal N is reported as 128+N, as shells and containerd do.</param>
/// <param name="ExitedAt">When the exit was observed.</param>
public readonly record struct ExitStatus(int ExitCode, DateTimeOffset ExitedAt);
