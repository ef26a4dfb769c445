using Containerd.Shimkit;

namespace Containerd.Shim.Wasmtime;

/// <summary>Identity of the Wasmtime shim, as <c>-v</c> prints it.</summary>
public static class WasmtimeShim
{
    /// <summary>The runtime name containerd selects it by (<c>--runtime</c>), which maps to the binary name
    /// <c>containerd-shim-wasmtime-v1</c>.</summary>
    public const string RuntimeName = "io.containerd.wasmtime.v1";

    /// <summary>The runtime name, version and git revision. The revision is the build's <c>SourceRevisionId</c>
    /// (the Makefile passes the commit), which the SDK appends to the informational version after a '+'.</summary>
    public static ShimInfo Info => ShimInfo.FromAssembly(RuntimeName, typeof(WasmtimeShim).Assembly);
}
