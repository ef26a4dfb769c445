namespace Containerd.Testing;

/// <summary>A ctr command exited non-zero; the message carries its full output and the tail of containerd's log.</summary>
public sealed class CtrCommandException : Exception
{
    /// <summary>Creates the exception for a failed command.</summary>
    /// <param name="args">The ctr arguments (without the address and namespace).</param>
    /// <param name="result">What ctr printed and returned.</param>
    /// <param name="logTail">The last lines of containerd's log.</param>
    public CtrCommandException(IReadOnlyList<string> args, ProcessResult result, string logTail)
        : base($"ctr {string.Join(' ', args)} failed: {result}\n--- containerd log (tail) ---\n{logTail}")
    {
        Args = args;
        Result = result;
    }

    /// <summary>The ctr arguments that failed.</summary>
    public IReadOnlyList<string> Args { get; }

    /// <summary>The exit code and output of ctr.</summary>
    public ProcessResult Result { get; }
}
