using Containerd.Shimkit;

namespace Containerd.Shim.WasmEdge;

/// <summary>Identity of the WasmEdge shim, as <c>-v</c> prints it.</summary>
public static class WasmEdgeShim
{
    /// <summary>The runtime name containerd selects it by (<c>--runtime</c>), which maps to the binary name
    /// <c>containerd-shim-wasmedge-v1</c>.</summary>
    public const string RuntimeName = "io.containerd.wasmedge.v1";

    /// <summary>The WasmEdge release the bindings are written and tested against (the one hack/fetch-wasmedge.sh
    /// fetches). <c>-v</c> names it without loading the library: the shim server never loads libwasmedge.</summary>
    public const string LibraryVersion = "0.14.1";

    /// <summary>The C API line the bindings follow: any <c>0.14.x</c> library is accepted at run time.</summary>
    public const string ApiVersion = "0.14";

    /// <summary>The runtime name, the shim's version with the WasmEdge release it is built for, and the git revision
    /// (<see cref="ShimInfo.FromAssembly"/>).</summary>
    public static ShimInfo Info
    {
        get
        {
            var info = ShimInfo.FromAssembly(RuntimeName, typeof(WasmEdgeShim).Assembly);
            return info with { Version = $"{info.Version} (WasmEdge {LibraryVersion})" };
        }
    }

    /// <summary>Whether a library reporting <paramref name="version"/> speaks the C API of <see cref="ApiVersion"/>.</summary>
    internal static bool IsSupported(string version) =>
        version == ApiVersion || version.StartsWith(ApiVersion + ".", StringComparison.Ordinal);
}
