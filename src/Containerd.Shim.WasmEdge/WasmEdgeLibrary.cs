using Containerd.Shimkit;
using Grpc.Core;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>
/// The loaded <c>libwasmedge.so.0</c>: loads it on first use (instance processes only), checks that it speaks the
/// C API the bindings were written for, and silences its logger, which would otherwise print the compiler's progress
/// and every error a second time on the container's stderr.
/// </summary>
internal static class WasmEdgeLibrary
{
    private static readonly Lazy<string> Loaded = new(Load);

    /// <summary>The library's version, e.g. <c>0.14.1</c>; loads it.</summary>
    public static string Version => Loaded.Value;

    /// <summary>Loads the library, or throws a <see cref="ShimException"/> saying how to get it.</summary>
    public static void EnsureLoaded() => _ = Loaded.Value;

    private static unsafe string Load()
    {
        string version;
        try
        {
            version = Text(WasmEdge_VersionGet());
        }
        catch (DllNotFoundException e)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"wasmedge: cannot load libwasmedge.so.0 (on Debian trixie or later: apt install libwasmedge0; on older " +
                $"systems `make install` ships a sysroot with it): {e.Message}");
        }
        if (!WasmEdgeShim.IsSupported(version))
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"wasmedge: libwasmedge.so.0 is version {UntrustedText.Excerpt(version)}; this shim is built for {WasmEdgeShim.ApiVersion}.x");
        }
        WasmEdge_LogOff();
        return version;
    }
}
