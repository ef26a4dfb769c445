namespace Containerd.Testing;

/// <summary>The private containerd exited or never answered on its socket; the message carries its log tail.</summary>
public sealed class ContainerdStartException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong, including the log tail.</param>
    /// <param name="inner">The underlying failure, if any.</param>
    public ContainerdStartException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
