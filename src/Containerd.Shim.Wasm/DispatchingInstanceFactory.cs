using Containerd.Shimkit;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The factory a wasm shim serves containerd with: a container whose <c>args[0]</c> is a Linux executable in its
/// rootfs (<see cref="LinuxExecutable"/>) goes to the Linux factory (runc), every other one to the wasm factory. This
/// is what lets a Kubernetes pod whose runtime class is a wasm one hold the pause container and Linux sidecars.
/// </summary>
public sealed class DispatchingInstanceFactory : IInstanceFactory, IOrphanCleanup
{
    private readonly IInstanceFactory _wasm;
    private readonly IInstanceFactory _linux;

    /// <summary>Creates the factory.</summary>
    /// <param name="wasm">Creates wasm containers.</param>
    /// <param name="linux">Creates plain Linux containers.</param>
    public DispatchingInstanceFactory(IInstanceFactory wasm, IInstanceFactory linux)
    {
        _wasm = wasm;
        _linux = linux;
    }

    /// <inheritdoc/>
    public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        var process = config.Spec.Process;
        var linux = process is null ? null : LinuxExecutable.Find(config.Rootfs, process.Args ?? [], process.Env ?? [], process.Cwd ?? "/");
        if (linux is null)
        {
            return _wasm.CreateAsync(config, ct);
        }
        ShimLog.Info($"container {config.Id}: {process!.Args![0]} is a Linux executable ({linux}): running it with runc");
        return _linux.CreateAsync(config, ct);
    }

    /// <inheritdoc/>
    public void CleanupOrphan(string ns, string id, string bundle)
    {
        (_wasm as IOrphanCleanup)?.CleanupOrphan(ns, id, bundle);
        (_linux as IOrphanCleanup)?.CleanupOrphan(ns, id, bundle);
    }
}
