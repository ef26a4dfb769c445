namespace ImageBuilder;

/// <summary>The runtime settings of an image (the <c>config</c> object of an OCI image configuration).</summary>
public sealed class ImageConfig
{
    /// <summary>The entrypoint, e.g. <c>["/wasi-demo-app.wasm"]</c>.</summary>
    public IReadOnlyList<string> Entrypoint { get; init; } = [];

    /// <summary>The default arguments appended to the entrypoint.</summary>
    public IReadOnlyList<string> Cmd { get; init; } = [];

    /// <summary>Environment variables as <c>NAME=value</c>.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>Labels; written sorted by key so the configuration is deterministic.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>The working directory, or null for the runtime's default.</summary>
    public string? WorkingDir { get; init; }
}
