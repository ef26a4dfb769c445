namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// Optional figures an in-process instance factory reports through the manager's Status call: what the shared engine
/// holds across every sandbox of the daemon.
/// </summary>
public interface ISharedHost
{
    /// <summary>Modules compiled since the daemon started (a cache hit adds nothing).</summary>
    long Compilations { get; }

    /// <summary>Compiled modules held in memory.</summary>
    int CachedModules { get; }

    /// <summary>Instances whose program runs right now.</summary>
    int RunningInstances { get; }
}
