namespace Containerd.Shim.Wasm;

/// <summary>
/// Optional capability of an <see cref="IEngine"/>: work that needs no container input (loading the engine's native
/// library, creating the engine). The instance process starts it on a worker thread first thing, so it overlaps the
/// reading of the spec and the resolution of the entrypoint (for a wasm-layer image, several round trips to
/// containerd) instead of following them.
/// </summary>
public interface IEngineWarmup
{
    /// <summary>Starts the warm-up and returns at once. Must not throw: a failure surfaces from
    /// <see cref="IEngine.CanHandle"/>, exactly as it would without the warm-up.</summary>
    void BeginWarmup();
}
