namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// <see cref="WasmtimeEngine"/> with the wasi:http host: modules, command components and <c>wasi:http/proxy</c>
/// components, served on Kestrel. <c>containerd-shim-wasmtime-v1</c> is
/// <c>WasmShim.Run&lt;WasmtimeHttpEngine&gt;(WasmtimeShim.Info, args)</c>.
/// </summary>
public sealed class WasmtimeHttpEngine : WasmtimeEngine
{
    /// <summary>Creates the engine with the wasi:http host.</summary>
    public WasmtimeHttpEngine()
        : base(new WasiHttpProxyServer())
    {
    }
}
