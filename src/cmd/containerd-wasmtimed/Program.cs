using Containerd.Shim.Wasmtime.Shared;

return WasmtimedShim.RunDaemon(args);
