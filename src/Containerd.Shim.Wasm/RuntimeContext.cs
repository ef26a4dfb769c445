using System.Runtime.InteropServices;
using Containerd.Shimkit.Oci;

namespace Containerd.Shim.Wasm;

/// <summary>Everything an <see cref="IEngine"/> needs to run one container's program.</summary>
public sealed class RuntimeContext
{
    /// <summary>The container id.</summary>
    public required string Id { get; init; }

    /// <summary>Host path of the container's root filesystem; the engine preopens it as <c>/</c>.</summary>
    public required string Rootfs { get; init; }

    /// <summary>The container's OCI runtime spec.</summary>
    public required Spec Spec { get; init; }

    /// <summary><c>process.args</c> as given; args[0] is the entrypoint as written (with any <c>#function</c>).</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary><c>process.env</c> as <c>NAME=value</c> entries.</summary>
    public required IReadOnlyList<string> Env { get; init; }

    /// <summary><c>process.cwd</c>, a path inside the container (default <c>/</c>).</summary>
    public required string Cwd { get; init; }

    /// <summary>The resolved program.</summary>
    public required Entrypoint Entrypoint { get; init; }

    /// <summary>The platform the container runs on, as OCI spells it (e.g. <c>linux/amd64</c>).</summary>
    public string Platform { get; init; } = CurrentPlatform;

    /// <summary>The program's argv: the entrypoint's name followed by <c>args[1..]</c>.</summary>
    public IReadOnlyList<string> Argv => [Entrypoint.Name, .. Args.Skip(1)];

    /// <summary>The environment split into names and values; entries without <c>=</c> get an empty value.</summary>
    public IEnumerable<(string Name, string Value)> EnvironmentVariables =>
        Env.Select(e => e.IndexOf('=') is var i and >= 0 ? (e[..i], e[(i + 1)..]) : (e, ""));

    /// <summary>The platform of this process, as OCI spells it.</summary>
    public static string CurrentPlatform => "linux/" + RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Builds the context of a container from its spec: reads process args, env and cwd and resolves the entrypoint
    /// inside <paramref name="rootfs"/>. Throws <see cref="Containerd.Shimkit.ShimException"/> for bad input.
    /// </summary>
    public static RuntimeContext FromSpec(string id, string rootfs, Spec spec)
    {
        var process = spec.Process;
        var args = process?.Args ?? [];
        var env = process?.Env ?? [];
        var cwd = string.IsNullOrEmpty(process?.Cwd) ? "/" : process.Cwd;
        return new RuntimeContext
        {
            Id = id,
            Rootfs = rootfs,
            Spec = spec,
            Args = args,
            Env = env,
            Cwd = cwd,
            Entrypoint = EntrypointResolver.Resolve(rootfs, args, env, cwd),
        };
    }
}
