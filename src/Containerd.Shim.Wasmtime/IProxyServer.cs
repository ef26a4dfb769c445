using Containerd.Shim.Wasm;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// What serves <c>wasi:http/proxy</c> components for <see cref="WasmtimeEngine"/>. Containerd.Shim.Wasmtime.Http
/// implements it, and links ASP.NET Core's Kestrel to do so; an engine built without it runs modules and command
/// components and refuses proxies at Create, so an embedder that serves no proxies links no web server.
/// </summary>
internal interface IProxyServer
{
    /// <summary>Reads the server's settings from the environment, so a value they cannot have fails Create
    /// (<see cref="Containerd.Shimkit.ShimException"/> naming the variable).</summary>
    void CheckSettings();

    /// <summary>Compiles a proxy component on the server's own engine, made with <paramref name="options"/>.
    /// Throws <see cref="InvalidOperationException"/> for a component the host cannot serve.</summary>
    IProxyProgram Compile(ReadOnlySpan<byte> component, ProxyEngineOptions options);

    /// <summary>Loads an artifact <see cref="IProxyProgram.Serialize"/> made; throws
    /// <see cref="InvalidOperationException"/> when Wasmtime refuses it.</summary>
    IProxyProgram Load(CompiledArtifact artifact, ProxyEngineOptions options);

    /// <summary>Serves <paramref name="program"/> (which this call owns) until SIGINT or SIGTERM and returns the exit
    /// status.</summary>
    int Serve(IProxyProgram program, IEnumerable<(string Name, string Value)> env, string name);
}

/// <summary>A compiled proxy component, ready to serve.</summary>
internal interface IProxyProgram : IDisposable
{
    /// <summary>The artifact a later <see cref="IProxyServer.Load"/> accepts.</summary>
    byte[] Serialize();
}
