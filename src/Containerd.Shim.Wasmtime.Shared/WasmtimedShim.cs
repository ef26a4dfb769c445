using Containerd.Shim.Wasm.Shared;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Containerd.Shimkit.Runc;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>Identity and endpoint of shared mode for Wasmtime: the daemon <c>containerd-wasmtimed</c> and the client
/// shim <c>containerd-shim-wasmtimed-v1</c> (runtime type <c>io.containerd.wasmtimed.v1</c>).</summary>
public static class WasmtimedShim
{
    /// <summary>The runtime type containerd selects the client shim by.</summary>
    public const string RuntimeName = "io.containerd.wasmtimed.v1";

    /// <summary>Where the daemon listens: <c>/run/io.containerd.wasmtimed.v1/manager.sock</c>, or
    /// <c>$CONTAINERD_WASMTIMED_SOCKET</c>.</summary>
    public static SharedModeEndpoint Endpoint { get; } = new(RuntimeName, "containerd-wasmtimed", "CONTAINERD_WASMTIMED_SOCKET");

    /// <summary>The runtime name, version and git revision (as <see cref="WasmtimeShim.Info"/>).</summary>
    public static ShimInfo Info => ShimInfo.FromAssembly(RuntimeName, typeof(WasmtimedShim).Assembly);

    /// <summary>The daemon's whole entry point.</summary>
    public static int RunDaemon(string[] args)
    {
        SharedWasmtimeHost created;
        try
        {
            created = new SharedWasmtimeHost();
        }
        catch (InvalidOperationException e)
        {
            // A setting of the daemon's environment it cannot use (the message names the variable).
            ShimLog.Error("containerd-wasmtimed cannot start", e);
            return 1;
        }
        using var host = created;
        ShimLog.Info($"wasmtime engine: {host.Description}");
        // runc's container init processes are re-parented to the daemon, which reaps them (Linux containers).
        Reaper.BecomeSubreaper();
        var factory = new SharedInstanceFactory(host, new RuncInstanceFactory(RuncOptions.ForRuntime(RuntimeName)));
        return SharedDaemon.Run(Info, Endpoint, factory, args);
    }
}
