using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using MinimalEngine;

// containerd starts `containerd-shim-minimal-v1` for runtime type io.containerd.minimal.v1.
return WasmShim.Run<MyEngine>(new ShimInfo("io.containerd.minimal.v1", "0.1.0", "sample"), args);
