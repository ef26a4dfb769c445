namespace Stress;

/// <summary>The run cannot start: containerd unreachable, image missing or not unpacked, bad options.</summary>
public sealed class StressException(string message, Exception? inner = null) : Exception(message, inner);
