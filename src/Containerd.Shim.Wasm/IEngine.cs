namespace Containerd.Shim.Wasm;

/// <summary>
/// What an embedder implements to teach the shim a wasm host. It runs inside the container's own instance
/// process (one engine object per container), so it may keep what <see cref="CanHandle"/> prepared for
/// <see cref="RunWasi"/>.
/// </summary>
public interface IEngine
{
    /// <summary>The engine's name, as it appears in logs and errors (e.g. <c>wasmtime</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Checks, at task Create, that the engine can run <paramref name="ctx"/>'s entrypoint (it is a valid module
    /// and exports the function), so bad input fails Create rather than Start. Throws
    /// <see cref="Containerd.Shimkit.ShimException"/> whose message names the entrypoint and the reason.
    /// </summary>
    void CanHandle(RuntimeContext ctx);

    /// <summary>Runs the WASI program to completion and returns its exit code. A trap is reported on stderr and
    /// returned as <see cref="ExitCodes.Trap"/>.</summary>
    int RunWasi(RuntimeContext ctx, Stdio stdio);
}
