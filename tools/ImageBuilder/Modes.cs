namespace ImageBuilder;

/// <summary>The permission bits the builder uses by default.</summary>
public static class Modes
{
    /// <summary>rwxr-xr-x: directories and executables.</summary>
    public const UnixFileMode Directory = (UnixFileMode)0b111_101_101;

    /// <summary>rwxr-xr-x: executables.</summary>
    public const UnixFileMode Executable = (UnixFileMode)0b111_101_101;

    /// <summary>rw-r--r--: ordinary files.</summary>
    public const UnixFileMode File = (UnixFileMode)0b110_100_100;

    /// <summary>r--r--r--: blobs inside the image-layout tarball, which are immutable.</summary>
    public const UnixFileMode Blob = (UnixFileMode)0b100_100_100;

    /// <summary>Parses an octal mode such as <c>755</c> or <c>0644</c>.</summary>
    /// <exception cref="FormatException">The text is not an octal mode.</exception>
    public static UnixFileMode ParseOctal(string text)
    {
        if (text.Length is 0 or > 5 || text.Any(c => c is < '0' or > '7'))
        {
            throw new FormatException($"mode '{text}' is not an octal number such as 755");
        }
        var value = Convert.ToInt32(text, 8);
        if (value > 0b111_111_111_111)
        {
            throw new FormatException($"mode '{text}' is out of range (at most 7777)");
        }
        return (UnixFileMode)value;
    }
}
