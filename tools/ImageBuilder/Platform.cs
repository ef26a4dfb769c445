namespace ImageBuilder;

/// <summary>An OCI platform: the os and architecture an image's manifest is for.</summary>
/// <param name="Os">The operating system, e.g. <c>linux</c> or <c>wasip1</c>.</param>
/// <param name="Architecture">The architecture, e.g. <c>amd64</c> or <c>wasm</c>.</param>
public sealed record Platform(string Os, string Architecture)
{
    /// <summary>linux/amd64, the platform of the regular test images.</summary>
    public static Platform LinuxAmd64 { get; } = new("linux", "amd64");

    /// <summary>wasip1/wasm, the platform of wasm-layer images and artifacts.</summary>
    public static Platform Wasip1 { get; } = new("wasip1", "wasm");

    /// <summary>wasip2/wasm, the platform of wasm-layer images of WASI 0.2 components.</summary>
    public static Platform Wasip2 { get; } = new("wasip2", "wasm");

    /// <summary>Parses <c>os/arch</c>.</summary>
    /// <exception cref="FormatException">The text is not <c>os/arch</c>.</exception>
    public static Platform Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            throw new FormatException($"platform '{text}' is not of the form os/arch");
        }
        return new Platform(parts[0], parts[1]);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Os}/{Architecture}";
}
