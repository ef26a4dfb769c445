using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using Wasmtime;

namespace MinimalEngine;

/// <summary>
/// The smallest useful engine: compile at Create (so a bad module fails <c>ctr run</c> before it starts), run WASI at
/// Start. Both calls happen in the container's own instance process, after the wasm layer entered its namespaces and
/// cgroup and wired its stdio to fds 0-2: the engine only inherits them.
/// </summary>
public sealed class MyEngine : IEngine
{
    private readonly Wasmtime.Engine _engine = new();
    private Module? _module;

    /// <inheritdoc/>
    public string Name => "minimal";

    /// <inheritdoc/>
    public void CanHandle(RuntimeContext ctx)
    {
        var entrypoint = ctx.Entrypoint;
        try
        {
            _module = entrypoint.Path is { } path
                ? Module.FromFile(_engine, path)
                : Module.FromBytes(_engine, entrypoint.Name, entrypoint.Bytes!.Value.ToArray());
        }
        catch (WasmtimeException e)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"{entrypoint.Name}: not a module this engine can run: {e.Message}");
        }
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_module is null)
        {
            CanHandle(ctx);
        }
        var wasi = new WasiConfiguration()
            .WithArgs(ctx.Argv)
            .WithEnvironmentVariables(ctx.EnvironmentVariables)
            .WithInheritedStandardInput()
            .WithInheritedStandardOutput()
            .WithInheritedStandardError();
        foreach (var preopen in ctx.Preopens)
        {
            wasi = wasi.WithPreopenedDirectory(preopen.HostPath, preopen.GuestPath, preopen.Writable);
        }
        using var linker = new Linker(_engine);
        linker.DefineWasi();
        using var store = new Store(_engine);
        store.SetWasiConfiguration(wasi);
        try
        {
            var run = linker.Instantiate(store, _module!).GetAction(ctx.Entrypoint.Function)
                ?? throw new ShimException(StatusCode.InvalidArgument, $"{ctx.Entrypoint.Name}: no function {ctx.Entrypoint.Function}");
            run();
            return 0;
        }
        catch (WasmtimeException e) when (e.ExitCode is { } code)
        {
            return code; // proc_exit
        }
        catch (TrapException e)
        {
            Console.Error.WriteLine($"{Name}: {e.Message}");
            return ExitCodes.Trap;
        }
    }
}
