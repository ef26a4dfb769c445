using Containerd.Shim.Wasm;
using Containerd.Shim.WasmEdge;

return WasmShim.Run<WasmEdgeEngine>(WasmEdgeShim.Info, args);
