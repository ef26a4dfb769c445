using Containerd.Shim.Wasm;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>Turns a container's <see cref="RuntimeContext"/> into Wasmtime's WASI preview 1 configuration.</summary>
internal static class WasiSetup
{
    public static WasiConfiguration For(RuntimeContext ctx)
    {
        var config = new WasiConfiguration()
            .WithArgs(ctx.Argv)
            .WithEnvironmentVariables(ctx.WasiEnvironment)
            // fds 0-2 of the instance process are the container's FIFOs, wired by the shim at spawn.
            .WithInheritedStandardInput()
            .WithInheritedStandardOutput()
            .WithInheritedStandardError();
        // Wasmtime's preopens are capability-based: a path, symlink or ".." that leaves a preopened directory is
        // refused, so the guest sees these folders and nothing else of the host.
        foreach (var p in ctx.Preopens)
        {
            config = config.WithPreopenedDirectory(p.HostPath, p.GuestPath, p.Writable);
        }
        return config;
    }
}
