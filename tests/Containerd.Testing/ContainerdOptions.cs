namespace Containerd.Testing;

/// <summary>How to start a private containerd: which release, which shims, and whether CRI runs.</summary>
public sealed record ContainerdOptions
{
    /// <summary>
    /// The containerd release line: "1.6" (bookworm), "1.7" (trixie) or "2" (sid).
    /// Defaults to env CONTAINERD_VERSION, else "1.6".
    /// </summary>
    public string Version { get; init; } = NormalizeVersion(System.Environment.GetEnvironmentVariable("CONTAINERD_VERSION"));

    /// <summary>
    /// A folder of shim binaries put first on containerd's PATH, so <c>io.containerd.&lt;name&gt;.v1</c>
    /// resolves to them. Defaults to env SHIM_BIN_DIR; null leaves only the runc shim from the package.
    /// </summary>
    public string? ShimBinDir { get; init; } = System.Environment.GetEnvironmentVariable("SHIM_BIN_DIR") is { Length: > 0 } d ? d : null;

    /// <summary>The namespace ctr commands use. Null picks a unique one per fixture.</summary>
    public string? Namespace { get; init; }

    /// <summary>Enables the CRI plugin (disabled by default: most tests only need ctr and the gRPC API).</summary>
    public bool EnableCri { get; init; }

    /// <summary>The pause image CRI uses for pod sandboxes, when <see cref="EnableCri"/> is set.</summary>
    public string SandboxImage { get; init; } = "registry.k8s.io/pause:3.9";

    /// <summary>
    /// CRI runtime handlers to register, name to runtime type (e.g. "wasmtime" to "io.containerd.wasmtime.v1"),
    /// written into the right table for the config version. Only used when <see cref="EnableCri"/> is set.
    /// </summary>
    public IReadOnlyDictionary<string, string> CriRuntimes { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Gives CRI pods a network: a CNI bridge network (Debian's containernetworking-plugins <c>bridge</c> and
    /// <c>host-local</c>, no IP masquerading) with a bridge name and /24 subnet of this fixture's own, so parallel
    /// fixtures never share one. Only used when <see cref="EnableCri"/> is set; see <see cref="ContainerdFixture.CniBridgeName"/>.
    /// </summary>
    public bool CniBridge { get; init; }

    /// <summary>
    /// Runs after config.toml is written and before containerd starts, e.g. to let a node installer edit the config and
    /// install shims into <c>&lt;WorkDir&gt;/bin</c>, which then goes first on containerd's PATH.
    /// </summary>
    public Func<ContainerdFixture, CancellationToken, Task>? BeforeStart { get; init; }

    /// <summary>Raw TOML tables appended to the generated config; the caller matches the config version.</summary>
    public string? ExtraConfig { get; init; }

    /// <summary>Extra environment variables for the containerd process (and so for the shims it starts).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>containerd's log level.</summary>
    public string LogLevel { get; init; } = System.Environment.GetEnvironmentVariable("CONTAINERD_LOG_LEVEL") is { Length: > 0 } l ? l : "info";

    /// <summary>How long to wait for the socket to answer before giving up.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The parent of the fixture's temporary folder. Kept short because the gRPC socket lives inside it
    /// and a Unix socket path is limited to 107 bytes.
    /// </summary>
    public string TempRoot { get; init; } = "/tmp";

    /// <summary>True for the 2.x line, whose config format is version 3.</summary>
    public bool IsV2 => Version.StartsWith('2');

    /// <summary>Maps "2", "2.1", "v2.1.9" and the like onto the release lines the fetch script knows.</summary>
    /// <param name="version">A version string, or null for the default.</param>
    /// <returns>"1.6", "1.7" or "2".</returns>
    /// <exception cref="ArgumentException">The version is not a supported release line.</exception>
    public static string NormalizeVersion(string? version)
    {
        var v = (version ?? "").Trim().TrimStart('v');
        if (v.Length == 0)
        {
            return "1.6";
        }
        if (v == "2" || v.StartsWith("2.", StringComparison.Ordinal))
        {
            return "2";
        }
        if (v.StartsWith("1.6", StringComparison.Ordinal))
        {
            return "1.6";
        }
        if (v.StartsWith("1.7", StringComparison.Ordinal))
        {
            return "1.7";
        }
        throw new ArgumentException($"unsupported containerd version '{version}': use 1.6, 1.7 or 2", nameof(version));
    }
}
