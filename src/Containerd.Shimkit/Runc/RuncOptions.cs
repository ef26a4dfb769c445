namespace Containerd.Shimkit.Runc;

/// <summary>Where runc is and where it keeps its state, for the Linux containers a shim runs next to its own.</summary>
public sealed class RuncOptions
{
    /// <summary>Where runc is looked for when it is not on <c>PATH</c> (Debian's <c>runc</c> package puts it in /usr/sbin).</summary>
    public static readonly IReadOnlyList<string> FallbackBinaries = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"];

    /// <summary>The runc executable: an absolute path, or a name looked up on <c>PATH</c> then in
    /// <see cref="FallbackBinaries"/> when a container needs it.</summary>
    public required string Binary { get; init; }

    /// <summary>The parent of runc's state roots: containers of namespace <c>ns</c> use <c>&lt;RootBase&gt;/ns</c>.
    /// It must differ from containerd's own runc shim's <c>/run/containerd/runc</c>, so ids never collide.</summary>
    public required string RootBase { get; init; }

    /// <summary>How an operator points the shim at another runc (named in the error when runc is missing).</summary>
    public string? BinarySetting { get; init; }

    /// <summary>The environment variable that names the runc binary of a runtime, e.g.
    /// <c>CONTAINERD_SHIM_WASMTIME_RUNC</c> for <c>io.containerd.wasmtime.v1</c>.</summary>
    public static string BinaryVariable(string runtimeName) => $"CONTAINERD_SHIM_{Engine(runtimeName).ToUpperInvariant()}_RUNC";

    /// <summary>
    /// The options of a shim whose runtime is <paramref name="runtimeName"/> (<c>io.containerd.&lt;engine&gt;.v1</c>):
    /// the binary from <see cref="BinaryVariable"/> or <c>runc</c>, the state under <c>/run/containerd/&lt;engine&gt;-runc</c>.
    /// </summary>
    public static RuncOptions ForRuntime(string runtimeName)
    {
        var engine = Engine(runtimeName);
        var binary = Environment.GetEnvironmentVariable(BinaryVariable(runtimeName));
        return new RuncOptions
        {
            Binary = string.IsNullOrEmpty(binary) ? "runc" : binary,
            RootBase = $"/run/containerd/{engine}-runc",
            BinarySetting = $"the environment variable {BinaryVariable(runtimeName)} of containerd",
        };
    }

    /// <summary>The runc root for containers of containerd namespace <paramref name="ns"/>.</summary>
    public string RootFor(string ns) => Path.Combine(RootBase, ns);

    /// <summary>The absolute path of <see cref="Binary"/>, or null when it cannot be found.</summary>
    public string? ResolveBinary()
    {
        if (Binary.Contains('/'))
        {
            return File.Exists(Binary) ? Path.GetFullPath(Binary) : null;
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, Binary);
            if (File.Exists(candidate))
            {
                return Path.GetFullPath(candidate);
            }
        }
        return Binary == "runc" ? FallbackBinaries.FirstOrDefault(File.Exists) : null;
    }

    private static string Engine(string runtimeName)
    {
        // io.containerd.wasmtime.v1 → wasmtime; anything else is used whole, made safe for a path and a variable name.
        var parts = runtimeName.Split('.');
        var engine = parts.Length == 4 && parts[0] == "io" && parts[1] == "containerd" ? parts[2] : runtimeName;
        return new string([.. engine.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')]);
    }
}
