namespace ImageBuilder;

/// <summary>A failure to build an image that names what was wrong; the CLI prints its message and exits non-zero.</summary>
public class ImageBuilderException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ImageBuilderException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>An input file (a layer, a wasm module, a file for a layer) does not exist or cannot be read.</summary>
public sealed class InputNotFoundException : ImageBuilderException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public InputNotFoundException(string path, string what, Exception? inner = null)
        : base($"{what} not found or unreadable: {path}", inner)
    {
        Path = path;
    }

    /// <summary>The missing input.</summary>
    public string Path { get; }
}

/// <summary>The output tarball cannot be written (missing or read-only directory, full disk).</summary>
public sealed class OutputNotWritableException : ImageBuilderException
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public OutputNotWritableException(string path, Exception inner)
        : base($"cannot write output {path}: {inner.Message}", inner)
    {
        Path = path;
    }

    /// <summary>The output that could not be written.</summary>
    public string Path { get; }
}
