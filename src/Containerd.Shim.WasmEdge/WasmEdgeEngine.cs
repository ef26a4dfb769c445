using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>
/// Runs WASI preview 1 modules on WasmEdge (<c>libwasmedge.so.0</c>). One object lives in one instance process:
/// <see cref="CanHandle"/> checks the module, compiles it to native code with WasmEdge's LLVM AOT compiler and loads
/// the result at task Create; <see cref="RunWasi"/> instantiates it with WASI and runs it at Start. Binary core
/// modules only: text modules and components are refused at Create.
/// </summary>
public sealed unsafe class WasmEdgeEngine : IEngine, IDisposable
{
    private const long PageSize = 65536;
    private const uint MaxPages = 65536;

    // The loaded artifact (an AST module with its native code), from CanHandle to RunWasi.
    private nint _module;

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
        CheckModule(entrypoint, bytes.Span);
        ShimTrace.Mark("instance: module checked");
        var artifact = Compile(entrypoint, bytes.Span);
        ShimTrace.Mark("instance: module compiled");
        _module = Load(entrypoint, artifact);
        ShimTrace.Mark("instance: module loaded");
    }

    /// <inheritdoc/>
    public int RunWasi(RuntimeContext ctx, Stdio stdio)
    {
        if (_module == 0)
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
            Check(WasmEdge_VMLoadWasmFromASTModule(vm, _module), "loading the module");
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
        if (_module != 0)
        {
            WasmEdge_ASTModuleDelete(_module);
            _module = 0;
        }
    }

    // Parses and validates the module as given, and finds the export, before any time goes into compiling it.
    private static void CheckModule(Entrypoint entrypoint, ReadOnlySpan<byte> bytes)
    {
        var module = Parse(entrypoint, bytes);
        var validator = WasmEdge_ValidatorCreate(0);
        try
        {
            var validated = WasmEdge_ValidatorValidate(validator, module);
            if (!WasmEdge_ResultOK(validated))
            {
                throw Invalid(entrypoint, validated);
            }
            CheckExport(entrypoint, module);
        }
        finally
        {
            WasmEdge_ValidatorDelete(validator);
            WasmEdge_ASTModuleDelete(module);
        }
    }

    private static void CheckExport(Entrypoint entrypoint, nint module)
    {
        var count = WasmEdge_ASTModuleListExports(module, null, 0);
        var exports = new nint[count];
        fixed (nint* list = exports)
        {
            WasmEdge_ASTModuleListExports(module, list, count);
        }
        foreach (var export in exports)
        {
            if (WasmEdge_ExportTypeGetExternalName(export).ToString() != entrypoint.Function)
            {
                continue;
            }
            if (WasmEdge_ExportTypeGetExternalType(export) != ExternalTypeFunction)
            {
                break;
            }
            var type = WasmEdge_ExportTypeGetFunctionType(module, export);
            if (type != 0 && (WasmEdge_FunctionTypeGetParametersLength(type) != 0 || WasmEdge_FunctionTypeGetReturnsLength(type) != 0))
            {
                throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
                    $"\"{UntrustedText.Excerpt(entrypoint.Function)}\" is not a function without parameters and results");
            }
            return;
        }
        throw new EntrypointException(EntrypointError.NoSuchFunction, entrypoint.Name,
            $"module does not export a function named \"{UntrustedText.Excerpt(entrypoint.Function)}\"");
    }

    // LLVM compiles the whole module ahead of time into a "universal" wasm: the module with its native code in a
    // custom section, which the loader takes from memory. Interruptible code checks a stop flag in loops, which
    // WasmEdge's asynchronous cancel needs; the compiler writes files only, next to its output (object file, linked
    // library), so it works in a private temporary folder of the host's that is removed at once.
    private static byte[] Compile(Entrypoint entrypoint, ReadOnlySpan<byte> bytes)
    {
        var dir = Directory.CreateTempSubdirectory("wasmedge-aot-");
        var conf = WasmEdge_ConfigureCreate();
        nint compiler = 0;
        try
        {
            WasmEdge_ConfigureCompilerSetOptimizationLevel(conf, WasmEdgeLibrary.OptimizationLevel);
            WasmEdge_ConfigureCompilerSetOutputFormat(conf, OutputFormatWasm);
            WasmEdge_ConfigureCompilerSetInterruptible(conf, true);
            compiler = WasmEdge_CompilerCreate(conf);
            var output = Path.Combine(dir.FullName, "module.wasm");
            Result compiled;
            fixed (byte* input = bytes)
            {
                compiled = WasmEdge_CompilerCompileFromBuffer(compiler, input, (ulong)bytes.Length, output);
            }
            if (!WasmEdge_ResultOK(compiled))
            {
                throw new EntrypointException(EntrypointError.InvalidModule, entrypoint.Name,
                    $"WasmEdge's compiler refused it: {Message(compiled)}");
            }
            return File.ReadAllBytes(output);
        }
        finally
        {
            if (compiler != 0)
            {
                WasmEdge_CompilerDelete(compiler);
            }
            WasmEdge_ConfigureDelete(conf);
            dir.Delete(recursive: true);
        }
    }

    // The artifact parsed with its native code; the caller owns the returned AST module.
    private static nint Load(Entrypoint entrypoint, byte[] artifact) => Parse(entrypoint, artifact);

    private static nint Parse(Entrypoint entrypoint, ReadOnlySpan<byte> bytes)
    {
        var loader = WasmEdge_LoaderCreate(0);
        try
        {
            nint module = 0;
            Result parsed;
            fixed (byte* buffer = bytes)
            {
                parsed = WasmEdge_LoaderParseFromBuffer(loader, &module, buffer, (uint)bytes.Length);
            }
            if (!WasmEdge_ResultOK(parsed))
            {
                throw Invalid(entrypoint, parsed);
            }
            return module;
        }
        finally
        {
            WasmEdge_LoaderDelete(loader);
        }
    }

    private static EntrypointException Invalid(Entrypoint entrypoint, Result result) =>
        new(EntrypointError.InvalidModule, entrypoint.Name, $"invalid wasm module: {Message(result)}");

    private static void Check(Result result, string what)
    {
        if (!WasmEdge_ResultOK(result))
        {
            throw new ShimException(StatusCode.Internal, $"wasmedge: {what}: {Message(result)}");
        }
    }
}
