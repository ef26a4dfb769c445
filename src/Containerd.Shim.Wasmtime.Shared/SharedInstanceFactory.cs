using Containerd.Shim.Wasm;
using Containerd.Shim.Wasm.Shared;
using Containerd.Shimkit;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The daemon's instance factory: wasm containers in process on the shared engine, Linux containers (a pod's pause
/// container, busybox sidecars) through runc exactly as normal mode runs them (<see cref="DispatchingInstanceFactory"/>),
/// the daemon being their child subreaper. The engine's figures stay visible to the manager's Status call.
/// </summary>
internal sealed class SharedInstanceFactory(SharedWasmtimeHost host, IInstanceFactory linux) : IInstanceFactory, ISharedHost, IOrphanCleanup
{
    private readonly DispatchingInstanceFactory _dispatch = new(host, linux);

    public long Compilations => host.Compilations;

    public int CachedModules => host.CachedModules;

    public int RunningInstances => host.RunningInstances;

    public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct) => _dispatch.CreateAsync(config, ct);

    public void CleanupOrphan(string ns, string id, string bundle) => _dispatch.CleanupOrphan(ns, id, bundle);
}
