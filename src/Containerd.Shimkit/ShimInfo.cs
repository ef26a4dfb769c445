namespace Containerd.Shimkit;

/// <summary>Identity of a shim binary, printed by <c>-v</c> and <c>-info</c>.</summary>
/// <param name="RuntimeName">The runtime name containerd uses, e.g. <c>io.containerd.wasmtime.v1</c>.</param>
/// <param name="Version">The shim's version.</param>
/// <param name="Revision">The git revision it was built from.</param>
public sealed record ShimInfo(string RuntimeName, string Version, string Revision);
