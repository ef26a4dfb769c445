using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Seccomp;

/// <summary>
/// The few calls of libseccomp (Debian's libseccomp2, 2.5.x) the compiler needs. Every call that can fail returns a
/// negative errno; none of them touches the calling process's own seccomp state: a context is built and exported,
/// never loaded.
/// </summary>
internal static unsafe partial class Libseccomp
{
    // The soname, not the development symlink: only libseccomp2 is installed on a host without libseccomp-dev.
    public const string Lib = "libseccomp.so.2";

    /// <summary>What <see cref="SyscallResolveName"/> returns for a name libseccomp does not know.</summary>
    public const int NrScmpError = -1;

    public const int FilterAttrOptimize = 8;

    /// <summary>struct scmp_arg_cmp: argument index, comparison, two 64-bit data.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ArgCmp
    {
        public uint Arg;
        public int Op;
        public ulong DatumA;
        public ulong DatumB;
    }

    [LibraryImport(Lib, EntryPoint = "seccomp_init")]
    public static partial Context Init(uint defaultAction);

    [LibraryImport(Lib, EntryPoint = "seccomp_release")]
    private static partial void Release(nint ctx);

    [LibraryImport(Lib, EntryPoint = "seccomp_arch_resolve_name", StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint ArchResolveName(string name);

    [LibraryImport(Lib, EntryPoint = "seccomp_arch_add")]
    public static partial int ArchAdd(Context ctx, uint archToken);

    [LibraryImport(Lib, EntryPoint = "seccomp_syscall_resolve_name", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SyscallResolveName(string name);

    [LibraryImport(Lib, EntryPoint = "seccomp_rule_add_array")]
    public static partial int RuleAddArray(Context ctx, uint action, int syscall, uint argCount, ArgCmp* args);

    [LibraryImport(Lib, EntryPoint = "seccomp_attr_set")]
    public static partial int AttrSet(Context ctx, int attr, uint value);

    [LibraryImport(Lib, EntryPoint = "seccomp_export_bpf")]
    public static partial int ExportBpf(Context ctx, int fd);

    /// <summary>A filter context (<c>scmp_filter_ctx</c>), released with <c>seccomp_release</c>.</summary>
    public sealed class Context : SafeHandleZeroOrMinusOneIsInvalid
    {
        public Context()
            : base(ownsHandle: true)
        {
        }

        protected override bool ReleaseHandle()
        {
            Release(handle);
            return true;
        }
    }
}
