using Containerd.Shim.Wasm;
using Containerd.Shim.Wasmtime;
using Containerd.Shim.Wasmtime.Http;

return WasmShim.Run<WasmtimeHttpEngine>(WasmtimeShim.Info, args);
