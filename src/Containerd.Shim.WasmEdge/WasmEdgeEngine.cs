using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>
/// Runs WASI preview 1 modules on WasmEdge (<c>libwasmedge.so.0</c>). One object lives in one instance process:
/// <see cref="CanHandle"/> checks the module and loads it compiled to native code at task Create, from the compile
/// cache (the content store for a wasm layer, the cache folder for a rootfs file) when an artifact fits this library,
/// otherwise compiled with WasmEdge's LLVM AOT compiler and stored; <see cref="RunWasi"/> instantiates it with WASI and
/// runs it at Start. Binary core modules only: text modules and components are refused at Create.
/// </summary>
public sealed unsafe class WasmEdgeEngine : IEngine, IDisposable
{
    private const long PageSize = 65536;
    private const uint MaxPages = 65536;

    // The loaded artifact (an AST module with its native code), from CanHandle to RunWasi.
    private WasmEdgeProgram? _program;
    private CompileCache? _cache;

    /// <inheritdoc/>
    public string Name => "wasmedge";

    /// <inheritdoc/>
    public void CanHandle(RuntimeContext ctx)
    {
        var entrypoint = ctx.Entrypoint;
        switch (entrypoint.Format)
        {
            case ModuleFormat.Text:
                throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                    "WasmEdge runs binary modules only; .wat needs wasmtime");
            case ModuleFormat.Component:
                throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                    "WasmEdge runs core modules only; components need wasmtime");
        }
        var bytes = entrypoint.ReadModule();
        WasmEdgeLibrary.EnsureLoaded();
        // Checked before the cache is asked: a bad module or a missing export fails Create with WasmEdge's reason,
        // and costs a few milliseconds, not a compile.
        WasmEdgeModule.Check(entrypoint, bytes.Span);
        ShimTrace.Mark("instance: module checked");
        _cache ??= CompileCache.FromEnvironment(WasmEdgeProgramCompiler.Engine);
        _program = _cache.GetOrCompile(new WasmEdgeProgramCompiler(), new ProgramSource(entrypoint.Name, bytes, entrypoint.Format), entrypoint.Cache);
        // Stored by now, if the cache keeps it; the run needs the loaded module only.
        _program.ReleaseArtifact();
        ShimTrace.Mark("instance: module loaded");
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_program is null)
        {
            CanHandle(ctx);
        }
        var entrypoint = ctx.Entrypoint;
        var program = UntrustedText.Excerpt(entrypoint.Name);
        var conf = WasmEdge_ConfigureCreate();
        nint vm = 0;
        try
        {
            WasmEdge_ConfigureAddHostRegistration(conf, HostRegistrationWasi);
            var budget = ctx.GuestMemoryBudget();
            if (budget is { } b)
            {
                // Past the cap memory.grow returns -1, so a guest's malloc fails cleanly instead of the kernel
                // OOM-killing the instance process.
                WasmEdge_ConfigureSetMaxMemoryPage(conf, (uint)Math.Min(b / PageSize, MaxPages));
            }
            vm = WasmEdge_VMCreate(conf, 0);
            if (vm == 0)
            {
                throw new InvalidOperationException("WasmEdge_VMCreate failed");
            }
            var wasi = WasmEdge_VMGetImportModuleContext(vm, HostRegistrationWasi);
            WasiSetup.Init(wasi, ctx);
            Check(WasmEdge_VMLoadWasmFromASTModule(vm, _program!.Module), "loading the module");
            Check(WasmEdge_VMValidate(vm), "validating the module");
            var instantiated = WasmEdge_VMInstantiate(vm);
            if (!WasmEdge_ResultOK(instantiated))
            {
                var limit = ctx.MemoryLimit is { } l
                    ? $" under the container's memory limit of {l} bytes (linear memory may use {budget} of them)"
                    : "";
                Console.Error.WriteLine($"{Name}: {program}: cannot instantiate{limit}: {Message(instantiated)}");
                return ExitCodes.Trap;
            }
            var function = WasmEdge_StringCreateByCString(entrypoint.Function);
            Result run;
            try
            {
                run = WasmEdge_VMExecute(vm, function, null, 0, null, 0);
            }
            finally
            {
                WasmEdge_StringDelete(function);
            }
            // proc_exit ends the run with "terminated", which counts as OK; the status is the WASI module's.
            if (WasmEdge_ResultOK(run))
            {
                return (int)WasmEdge_ModuleInstanceWASIGetExitCode(wasi);
            }
            Console.Error.WriteLine($"{Name}: {program}: {Message(run)}");
            return ExitCodes.Trap;
        }
        finally
        {
            if (vm != 0)
            {
                WasmEdge_VMDelete(vm);
            }
            WasmEdge_ConfigureDelete(conf);
        }
    }

    /// <summary>Releases the loaded module.</summary>
    public void Dispose()
    {
        _program?.Dispose();
        _program = null;
    }

    private static void Check(Result result, string what)
    {
        if (!WasmEdge_ResultOK(result))
        {
            throw new ShimException(StatusCode.Internal, $"wasmedge: {what}: {Message(result)}");
        }
    }
}
