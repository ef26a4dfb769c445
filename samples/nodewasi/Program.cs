using Containerd.Shimkit;
using NodeWasi;

// containerd starts `containerd-shim-nodewasi-v1` for runtime type io.containerd.nodewasi.v1.
return ShimMain.Run(new ShimInfo("io.containerd.nodewasi.v1", "0.1.0", "sample"), new NodeInstanceFactory(), args);
