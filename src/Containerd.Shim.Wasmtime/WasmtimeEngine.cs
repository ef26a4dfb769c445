using Containerd.Shim.Wasm;
using Grpc.Core;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// Runs WASI preview 1 commands on Wasmtime. One object lives in one instance process: <see cref="CanHandle"/>
/// compiles the module at task Create and <see cref="RunWasi"/> runs that same compiled module at Start.
/// </summary>
public sealed class WasmtimeEngine : IEngine, IDisposable
{
    private Engine? _engine;
    private Module? _module;

    /// <inheritdoc/>
    public string Name => "wasmtime";

    /// <inheritdoc/>
    public void CanHandle(RuntimeContext ctx)
    {
        var entrypoint = ctx.Entrypoint;
        _engine ??= CompilationCache.CreateEngine();
        try
        {
            _module = Load(_engine, entrypoint);
        }
        catch (WasmtimeException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                $"invalid {(entrypoint.Format == ModuleFormat.Text ? "wat" : "wasm")} module: {FirstLine(e.Message)}", e);
        }
        var export = _module.Exports.FirstOrDefault(e => e.Name == entrypoint.Function);
        if (export is not FunctionExport)
        {
            throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                $"module does not export a function named \"{entrypoint.Function}\"");
        }
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_engine is null || _module is null)
        {
            CanHandle(ctx);
        }
        using var linker = new Linker(_engine!);
        linker.DefineWasi();
        using var store = new Store(_engine!);
        store.SetWasiConfiguration(WasiSetup.For(ctx));
        if (ctx.GuestMemoryBudget() is { } budget)
        {
            // Past the container's memory limit memory.grow returns -1 (a guest's malloc fails cleanly) instead of
            // the kernel OOM-killing the whole instance process.
            store.SetLimits(memorySize: budget);
        }

        var entrypoint = ctx.Entrypoint;
        try
        {
            Instance instance;
            try
            {
                instance = linker.Instantiate(store, _module!);
            }
            catch (WasmtimeException e) when (e.ExitCode is null && ctx.MemoryLimit is { } limit)
            {
                // Most likely the module's initial memory does not fit the cap; say which limit it met.
                Console.Error.WriteLine($"{Name}: {entrypoint.Name}: cannot instantiate under the container's memory limit of " +
                    $"{limit} bytes (linear memory may use {ctx.GuestMemoryBudget()} of them): {FirstLine(e.Message)}");
                return ExitCodes.Trap;
            }
            var run = instance.GetAction(entrypoint.Function)
                ?? throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"\"{entrypoint.Function}\" is not a function without parameters and results");
            run();
            return 0;
        }
        catch (WasmtimeException e) when (e.ExitCode is { } code)
        {
            // proc_exit surfaces as an error carrying the code: the program's chosen exit, not a failure.
            return code;
        }
        catch (TrapException e)
        {
            Console.Error.WriteLine($"{Name}: {entrypoint.Name}: {e.Message}");
            return ExitCodes.Trap;
        }
    }

    /// <summary>Releases the compiled module and the engine.</summary>
    public void Dispose()
    {
        _module?.Dispose();
        _engine?.Dispose();
    }

    private static Module Load(Engine engine, Entrypoint entrypoint)
    {
        if (entrypoint.Bytes is { } bytes)
        {
            return entrypoint.Format == ModuleFormat.Text
                ? Module.FromText(engine, entrypoint.Name, System.Text.Encoding.UTF8.GetString(bytes.Span))
                : Module.FromBytes(engine, entrypoint.Name, bytes.Span);
        }
        var path = entrypoint.Path ?? throw new EntrypointException(EntrypointError.Missing, entrypoint.Name, "no module file or bytes");
        return entrypoint.Format == ModuleFormat.Text
            ? Module.FromText(engine, entrypoint.Name, File.ReadAllText(path))
            : Module.FromBytes(engine, entrypoint.Name, File.ReadAllBytes(path));
    }

    private static string FirstLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // Wasmtime puts the cause last ("Caused by: ..."), which is the part a user can act on.
        return string.Join(": ", lines.Where(l => l != "Caused by:" && !l.StartsWith("0:", StringComparison.Ordinal)));
    }
}
