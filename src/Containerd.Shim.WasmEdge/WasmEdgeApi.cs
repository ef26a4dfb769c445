using System.Runtime.InteropServices;

namespace Containerd.Shim.WasmEdge;

/// <summary>
/// The part of WasmEdge's 0.14 C API (<c>wasmedge/wasmedge.h</c>) the engine uses, bound by soname. Nothing here runs
/// in the shim server: the library (and LLVM with it) is loaded on the first call, which only an instance process
/// makes. Contexts are opaque pointers the caller deletes with the matching <c>*Delete</c>.
/// </summary>
internal static unsafe partial class WasmEdgeApi
{
    private const string Library = "libwasmedge.so.0";

    /// <summary><c>WasmEdge_String</c>: a length and a buffer that is not NUL-terminated.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct WasmEdgeString
    {
        public uint Length;
        public byte* Buf;

        public override readonly string ToString() => Buf is null ? "" : System.Text.Encoding.UTF8.GetString(Buf, (int)Length);
    }

    /// <summary><c>WasmEdge_Result</c>: the error category in the top byte, the code below.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Result
    {
        public uint Code;
    }

    // enum WasmEdge_HostRegistration
    public const int HostRegistrationWasi = 0;

    // enum WasmEdge_CompilerOptimizationLevel
    public const int OptimizationO2 = 2;

    // enum WasmEdge_CompilerOutputFormat: WebAssembly with the native code in a custom section ("universal wasm"),
    // which the loader can take from a buffer; the native shared-library format loads from files only.
    public const int OutputFormatWasm = 1;

    // enum WasmEdge_ExternalType
    public const int ExternalTypeFunction = 0;

    // enum WasmEdge_ErrCode (category WASM): proc_exit ended the program.
    public const uint ErrCodeTerminated = 0x01;

    [LibraryImport(Library)]
    public static partial byte* WasmEdge_VersionGet();

    [LibraryImport(Library)]
    public static partial void WasmEdge_LogOff();

    [LibraryImport(Library)]
    [return: MarshalAs(UnmanagedType.U1)]
    public static partial bool WasmEdge_ResultOK(Result res);

    [LibraryImport(Library)]
    public static partial uint WasmEdge_ResultGetCode(Result res);

    [LibraryImport(Library)]
    public static partial byte* WasmEdge_ResultGetMessage(Result res);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial WasmEdgeString WasmEdge_StringCreateByCString(string str);

    [LibraryImport(Library)]
    public static partial void WasmEdge_StringDelete(WasmEdgeString str);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_ConfigureCreate();

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureAddHostRegistration(nint conf, int host);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureSetMaxMemoryPage(nint conf, uint pages);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureCompilerSetOptimizationLevel(nint conf, int level);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureCompilerSetOutputFormat(nint conf, int format);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureCompilerSetInterruptible(nint conf, [MarshalAs(UnmanagedType.U1)] bool interruptible);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ConfigureDelete(nint conf);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_CompilerCreate(nint conf);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial Result WasmEdge_CompilerCompileFromBuffer(nint compiler, byte* input, ulong length, string outPath);

    [LibraryImport(Library)]
    public static partial void WasmEdge_CompilerDelete(nint compiler);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_LoaderCreate(nint conf);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_LoaderParseFromBuffer(nint loader, nint* module, byte* buffer, uint length);

    [LibraryImport(Library)]
    public static partial void WasmEdge_LoaderDelete(nint loader);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_ValidatorCreate(nint conf);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_ValidatorValidate(nint validator, nint module);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ValidatorDelete(nint validator);

    [LibraryImport(Library)]
    public static partial uint WasmEdge_ASTModuleListExports(nint module, nint* exports, uint length);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ASTModuleDelete(nint module);

    [LibraryImport(Library)]
    public static partial int WasmEdge_ExportTypeGetExternalType(nint export);

    [LibraryImport(Library)]
    public static partial WasmEdgeString WasmEdge_ExportTypeGetExternalName(nint export);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_ExportTypeGetFunctionType(nint module, nint export);

    [LibraryImport(Library)]
    public static partial uint WasmEdge_FunctionTypeGetParametersLength(nint type);

    [LibraryImport(Library)]
    public static partial uint WasmEdge_FunctionTypeGetReturnsLength(nint type);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_VMCreate(nint conf, nint store);

    [LibraryImport(Library)]
    public static partial nint WasmEdge_VMGetImportModuleContext(nint vm, int host);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_VMLoadWasmFromASTModule(nint vm, nint module);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_VMValidate(nint vm);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_VMInstantiate(nint vm);

    [LibraryImport(Library)]
    public static partial Result WasmEdge_VMExecute(nint vm, WasmEdgeString function, void* parameters, uint parameterCount,
        void* returns, uint returnCount);

    [LibraryImport(Library)]
    public static partial void WasmEdge_VMDelete(nint vm);

    [LibraryImport(Library)]
    public static partial void WasmEdge_ModuleInstanceInitWASI(nint wasi, nint* args, uint argCount, nint* envs, uint envCount,
        nint* preopens, uint preopenCount);

    [LibraryImport(Library)]
    public static partial uint WasmEdge_ModuleInstanceWASIGetExitCode(nint wasi);

    /// <summary>A NUL-terminated string WasmEdge owns, as .NET text.</summary>
    public static string Text(byte* s) => Marshal.PtrToStringUTF8((nint)s) ?? "";

    /// <summary>WasmEdge's one-line description of a failed result.</summary>
    public static string Message(Result r) => Text(WasmEdge_ResultGetMessage(r));
}
