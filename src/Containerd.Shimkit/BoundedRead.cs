namespace Containerd.Shimkit;

/// <summary>
/// Reads of what a tenant can influence (a child's pipe, files in the bundle or the rootfs, runc's log) that stop at a
/// size bound instead of taking whatever memory the writer wants. Going past the bound is a
/// <see cref="ReadLimitExceededException"/>, an <see cref="IOException"/> naming the bound, so callers that already
/// handle an unreadable file handle this too.
/// </summary>
public static class BoundedRead
{
    /// <summary>Reads <paramref name="stream"/> to its end; throws <see cref="ReadLimitExceededException"/> naming
    /// <paramref name="what"/> and the bound as soon as more than <paramref name="maxBytes"/> bytes came.</summary>
    public static byte[] ToEnd(Stream stream, int maxBytes, string what)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        var buffer = new byte[Math.Min(maxBytes + 1, 64 << 10)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > maxBytes)
                {
                    throw TooLarge(what, maxBytes);
                }
                Array.Resize(ref buffer, (int)Math.Min((long)maxBytes + 1, (long)buffer.Length * 2));
            }
            var n = stream.Read(buffer, length, buffer.Length - length);
            if (n == 0)
            {
                break;
            }
            length += n;
            if (length > maxBytes)
            {
                throw TooLarge(what, maxBytes);
            }
        }
        return buffer.AsSpan(0, length).ToArray();
    }

    /// <summary>The file at <paramref name="path"/>, at most <paramref name="maxBytes"/> bytes of it
    /// (<see cref="IOException"/> beyond).</summary>
    public static byte[] File(string path, int maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        return ToEnd(stream, maxBytes, path);
    }

    /// <summary>The file at <paramref name="path"/> as UTF-8 text, at most <paramref name="maxBytes"/> bytes of it.</summary>
    public static string Text(string path, int maxBytes) => System.Text.Encoding.UTF8.GetString(File(path, maxBytes));

    /// <summary>
    /// The text from <paramref name="offset"/> to the end of the file, or only its last <paramref name="maxBytes"/>
    /// bytes when there is more (a log's newest entries are the ones that matter); empty when the file is shorter.
    /// </summary>
    public static string Tail(string path, long offset, int maxBytes)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1);
        var start = Math.Max(offset, stream.Length - maxBytes);
        if (start >= stream.Length)
        {
            return "";
        }
        stream.Seek(start, SeekOrigin.Begin);
        var buffer = new byte[maxBytes];
        var length = 0;
        int n;
        while (length < buffer.Length && (n = stream.Read(buffer, length, buffer.Length - length)) > 0)
        {
            length += n;
        }
        return System.Text.Encoding.UTF8.GetString(buffer, 0, length);
    }

    private static ReadLimitExceededException TooLarge(string what, int maxBytes) => new(what, maxBytes);
}
