using Containerd.Shim.Wasm.Shared;
using Containerd.Shimkit;

// The client shim of shared mode: it only connects containerd to the containerd-wasmtimed daemon, so it links
// neither Wasmtime nor an instance factory. Keep the endpoint in step with WasmtimedShim.Endpoint.
var endpoint = new SharedModeEndpoint("io.containerd.wasmtimed.v1", "containerd-wasmtimed", "CONTAINERD_WASMTIMED_SOCKET");
var version = typeof(SharedShimClient).Assembly.GetName().Version?.ToString(3) ?? "unknown";
return ShimMain.Run(new ShimInfo(endpoint.RuntimeName, version, ThisAssembly.Revision), new SharedShimClient(endpoint), args);

internal static class ThisAssembly
{
    public static string Revision
    {
        get
        {
            var informational = System.Reflection.CustomAttributeExtensions
                .GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(typeof(ThisAssembly).Assembly)?.InformationalVersion ?? "";
            var plus = informational.IndexOf('+');
            return plus < 0 ? "unknown" : informational[(plus + 1)..];
        }
    }
}
