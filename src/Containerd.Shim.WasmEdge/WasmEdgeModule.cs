using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>Parsing and checking a binary module with WasmEdge's loader and validator, with errors that name the
/// entrypoint.</summary>
internal static unsafe class WasmEdgeModule
{
    /// <summary>Parses and validates the module as given and finds the export (a function without parameters and
    /// results); throws <see cref="EntrypointException"/> saying what is wrong.</summary>
    public static void Check(Entrypoint entrypoint, ReadOnlySpan<byte> bytes)
    {
        var module = Parse(entrypoint.Name, bytes);
        var validator = WasmEdge_ValidatorCreate(0);
        try
        {
            var validated = WasmEdge_ValidatorValidate(validator, module);
            if (!WasmEdge_ResultOK(validated))
            {
                throw Invalid(entrypoint.Name, validated);
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

    /// <summary>The AST module of <paramref name="bytes"/>, which the caller deletes.</summary>
    public static nint Parse(string name, ReadOnlySpan<byte> bytes)
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
                throw Invalid(name, parsed);
            }
            return module;
        }
        finally
        {
            WasmEdge_LoaderDelete(loader);
        }
    }

    private static EntrypointException Invalid(string name, Result result) =>
        new(EntrypointError.InvalidModule, name, $"invalid wasm module: {Message(result)}");
}
