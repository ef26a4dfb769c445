using Containerd.Shim.Wasm;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>The wasi:http host as <see cref="WasmtimeEngine"/>'s proxy server: <see cref="ProxyHost"/> compiles and
/// loads, <see cref="HttpProxyRunner"/> serves on Kestrel.</summary>
internal sealed class WasiHttpProxyServer : IProxyServer
{
    /// <inheritdoc/>
    public void CheckSettings() => _ = HttpServerLimits.FromEnvironment();

    /// <inheritdoc/>
    public IProxyProgram Compile(ReadOnlySpan<byte> component, ProxyEngineOptions options) => ProxyHost.Compile(component, options);

    /// <inheritdoc/>
    public IProxyProgram Load(CompiledArtifact artifact, ProxyEngineOptions options) => artifact.Path is { } file
        ? ProxyHost.DeserializeFile(file, options)
        : ProxyHost.Deserialize(artifact.Bytes.Span, options);

    /// <inheritdoc/>
    public int Serve(IProxyProgram program, IEnumerable<(string Name, string Value)> env, string name) =>
        HttpProxyRunner.Run((ProxyHost)program, env, name);
}
