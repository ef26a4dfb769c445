using Containerd.Shim.Wasm;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// A proxy container's per-store limits: the component's memories, tables and core instances capped at what it
/// declares, and its memory limit (0: none) split among them (<see cref="StoreShape.Budget"/>).
/// </summary>
internal sealed record ProxyStoreLimits(StoreShape Shape, long MemoryLimit);
