using System.Runtime.InteropServices;
using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using static Containerd.Shim.WasmEdge.WasmEdgeApi;

namespace Containerd.Shim.WasmEdge;

/// <summary>Turns a container's <see cref="RuntimeContext"/> into WasmEdge's WASI preview 1 module settings.</summary>
internal static unsafe class WasiSetup
{
    /// <summary>The preopens as WasmEdge takes them: <c>guest:host</c>, with <c>:readonly</c> for read-only ones.
    /// WasmEdge splits at the first colon, so a guest path with one cannot be expressed.</summary>
    public static IReadOnlyList<string> Preopens(RuntimeContext ctx) => ctx.Preopens.Select(p =>
    {
        if (p.GuestPath.Contains(':'))
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"wasmedge: cannot preopen {UntrustedText.Excerpt(p.GuestPath)}: WasmEdge's preopens cannot name a path with ':'");
        }
        return $"{p.GuestPath}:{p.HostPath}{(p.Writable ? "" : ":readonly")}";
    }).ToList();

    /// <summary>Initialises the VM's WASI module <paramref name="wasi"/>: argv, the WASI environment and the
    /// preopens. Its fds 0-2 are the process's, which the shim wired to the container's FIFOs at spawn.</summary>
    public static void Init(nint wasi, RuntimeContext ctx)
    {
        var args = ToNative(ctx.Argv);
        var env = ToNative(ctx.WasiEnvironment.Select(e => $"{e.Name}={e.Value}").ToList());
        var preopens = ToNative(Preopens(ctx));
        try
        {
            fixed (nint* a = args, e = env, p = preopens)
            {
                // WasmEdge copies the strings.
                WasmEdge_ModuleInstanceInitWASI(wasi, a, (uint)args.Length, e, (uint)env.Length, p, (uint)preopens.Length);
            }
        }
        finally
        {
            Free(args);
            Free(env);
            Free(preopens);
        }
    }

    private static nint[] ToNative(IReadOnlyList<string> strings) => strings.Select(Marshal.StringToCoTaskMemUTF8).ToArray();

    private static void Free(nint[] strings)
    {
        foreach (var s in strings)
        {
            Marshal.FreeCoTaskMem(s);
        }
    }
}
