using Containerd.Shimkit;
using Containerd.Shimkit.Runc;

namespace Containerd.Shim.Wasm;

/// <summary>The whole entry point of a wasm shim executable: <c>return WasmShim.Run&lt;MyEngine&gt;(info, args);</c>.</summary>
public static class WasmShim
{
    /// <summary>
    /// Runs the instance role when the shim spawned this process as a container (<see cref="InstanceProcess"/>),
    /// otherwise the containerd shim binary contract with a <see cref="WasmInstanceFactory{TEngine}"/>, next to a
    /// <see cref="RuncInstanceFactory"/> for the containers that are plain Linux ones (<see cref="DispatchingInstanceFactory"/>).
    /// </summary>
    public static int Run<TEngine>(ShimInfo info, string[] args)
        where TEngine : IEngine, new() =>
        InstanceProcess.IsInstance(args)
            ? InstanceProcess.Run<TEngine>(args)
            : ShimMain.Run(info, new DispatchingInstanceFactory(
                new WasmInstanceFactory<TEngine>(), new RuncInstanceFactory(RuncOptions.ForRuntime(info.RuntimeName))), args);
}
