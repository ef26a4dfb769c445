namespace Containerd.Api.Client;

/// <summary>A content-store blob had more bytes than its reader allows; the read stopped there. An
/// <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed), so it is not taken for a malformed blob.</summary>
public sealed class BlobTooLargeException : IOException
{
    /// <summary>A blob of <paramref name="digest"/> past <paramref name="maxBytes"/>.</summary>
    public BlobTooLargeException(string digest, int maxBytes)
        : base($"content {digest} has more than {maxBytes} bytes")
    {
        Digest = digest;
        MaxBytes = maxBytes;
    }

    /// <summary>The blob.</summary>
    public string Digest { get; }

    /// <summary>The bound it went past.</summary>
    public int MaxBytes { get; }
}
