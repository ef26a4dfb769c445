namespace ImageBuilder;

/// <summary>Reads inputs from the host, turning every way a read can fail into one <see cref="InputNotFoundException"/> naming the file.</summary>
internal static class HostFiles
{
    public static byte[] Read(string path, string what)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new InputNotFoundException(path, what, e);
        }
    }

    /// <summary>0755 when the owner may execute the file, else 0644: the executable bit is the one bit that matters in an image.</summary>
    public static UnixFileMode DefaultMode(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return Modes.File;
        }
        try
        {
            return (File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0 ? Modes.Executable : Modes.File;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new InputNotFoundException(path, "file", e);
        }
    }
}
