using System.Reflection;

namespace Containerd.Shimkit;

/// <summary>Identity of a shim binary, printed by <c>-v</c> and <c>-info</c>.</summary>
/// <param name="RuntimeName">The runtime name containerd uses, e.g. <c>io.containerd.wasmtime.v1</c>.</param>
/// <param name="Version">The shim's version.</param>
/// <param name="Revision">The git revision it was built from.</param>
public sealed record ShimInfo(string RuntimeName, string Version, string Revision)
{
    /// <summary>The identity of a shim built from <paramref name="assembly"/>: its informational version, split into
    /// the version and the build's <c>SourceRevisionId</c> (the Makefile passes the commit), which the SDK appends
    /// after a '+'.</summary>
    public static ShimInfo FromAssembly(string runtimeName, Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var plus = version.IndexOf('+');
        return plus < 0
            ? new ShimInfo(runtimeName, version, "unknown")
            : new ShimInfo(runtimeName, version[..plus], version[(plus + 1)..]);
    }
}
