using Containerd.Shim.Wasm;
using Containerd.Shim.Wasmtime;

return WasmShim.Run<WasmtimeEngine>(WasmtimeShim.Info, args);
