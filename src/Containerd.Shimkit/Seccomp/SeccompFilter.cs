using System.Runtime.InteropServices;
using Grpc.Core;

namespace Containerd.Shimkit.Seccomp;

/// <summary>
/// A compiled seccomp profile: the classic BPF program the kernel runs at every system call, and the filter flags
/// to load it with. Made by <see cref="SeccompCompiler.Compile"/> in the shim, carried to the process it confines as
/// bytes (<see cref="ToBytes"/>, <see cref="Parse"/>), and installed there by <see cref="Install"/>.
/// </summary>
/// <remarks>
/// The byte form, in the host's byte order (both ends are processes of one host):
/// <code>
/// offset 0   4 bytes   magic "SCF1"
/// offset 4   u32       SECCOMP_FILTER_FLAG_* bits to load with (LOG 2, SPEC_ALLOW 4; TSYNC is always added)
/// offset 8   n × 8     the program: struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, 1 ≤ n ≤ 4096
/// </code>
/// n is the remaining length over 8. The flags travel beside the program because they are arguments of the
/// seccomp(2) call that loads it, not part of the program libseccomp exports.
/// </remarks>
public sealed unsafe partial class SeccompFilter
{
    /// <summary>SECCOMP_FILTER_FLAG_LOG: log every action but SECCOMP_RET_ALLOW.</summary>
    public const uint FlagLog = 2;

    /// <summary>SECCOMP_FILTER_FLAG_SPEC_ALLOW: do not turn on the speculative store bypass mitigation.</summary>
    public const uint FlagSpecAllow = 4;

    /// <summary>The kernel's limit on one program (BPF_MAXINSNS).</summary>
    public const int MaxInstructions = 4096;

    internal const int InstructionSize = 8;
    private const int HeaderSize = 8;

    private const int PR_SET_NO_NEW_PRIVS = 38;
    private const nint SECCOMP_SET_MODE_FILTER = 1;
    private const uint SECCOMP_FILTER_FLAG_TSYNC = 1;

    private readonly byte[] _program;

    internal SeccompFilter(uint flags, byte[] program)
    {
        if (Problem(flags, program.Length) is { } problem)
        {
            throw new ArgumentException(problem);
        }
        Flags = flags;
        _program = program;
    }

    /// <summary>The SECCOMP_FILTER_FLAG_* bits the filter is loaded with, besides TSYNC.</summary>
    public uint Flags { get; }

    /// <summary>The program, an array of <c>struct sock_filter</c>.</summary>
    public ReadOnlyMemory<byte> Program => _program;

    /// <summary>The number of BPF instructions.</summary>
    public int InstructionCount => _program.Length / InstructionSize;

    /// <summary>The byte form (see the remarks of <see cref="SeccompFilter"/>).</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[HeaderSize + _program.Length];
        "SCF1"u8.CopyTo(bytes);
        BitConverter.TryWriteBytes(bytes.AsSpan(4, 4), Flags);
        _program.CopyTo(bytes.AsSpan(HeaderSize));
        return bytes;
    }

    /// <summary>Reads the byte form back.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a compiled profile.</exception>
    public static SeccompFilter Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < HeaderSize || !bytes[..4].SequenceEqual("SCF1"u8))
        {
            throw new InvalidDataException("not a compiled seccomp profile (no SCF1 header)");
        }
        var flags = BitConverter.ToUInt32(bytes[4..8]);
        var program = bytes[HeaderSize..];
        if (Problem(flags, program.Length) is { } problem)
        {
            throw new InvalidDataException($"compiled seccomp profile: {problem}");
        }
        return new SeccompFilter(flags, program.ToArray());
    }

    private static string? Problem(uint flags, int programLength) =>
        (flags & ~(FlagLog | FlagSpecAllow)) != 0 ? $"filter flags 0x{flags:x} are not LOG and SPEC_ALLOW"
        : programLength == 0 || programLength % InstructionSize != 0 || programLength / InstructionSize > MaxInstructions
            ? $"a program of {programLength} bytes is not 1-{MaxInstructions} instructions"
            : null;

    /// <summary>
    /// Installs the filter on every thread of the calling process: sets no_new_privs, then loads the program with
    /// SECCOMP_FILTER_FLAG_TSYNC. Irreversible; every thread the process creates afterwards inherits the filter.
    /// </summary>
    /// <exception cref="ShimException">The kernel refused (Internal, with the step and its errno).</exception>
    public unsafe void Install()
    {
        // The kernel takes a filter from an unprivileged thread only under no_new_privs, so that a filter cannot be
        // used to confuse a set-uid program it execs. The processes this confines never call execve, so the bit
        // costs them nothing, and it spares them needing CAP_SYS_ADMIN at this point.
        if (Libc.Prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        {
            throw Failure("prctl(PR_SET_NO_NEW_PRIVS)", Marshal.GetLastPInvokeError());
        }
        fixed (byte* program = _program)
        {
            var prog = new SockFprog { Length = (ushort)InstructionCount, Filter = program };
            // TSYNC: seccomp(2) without it filters the calling thread only. A .NET process already has several
            // threads (GC, finalizer, thread pool, the runtime's signal handling) that share the guest's memory and
            // can make any system call for it; TSYNC has the kernel attach the same filter and no_new_privs to all
            // of them atomically, or fail naming the thread it could not.
            var rc = Syscall(SeccompSyscallNumber(), SECCOMP_SET_MODE_FILTER, (nint)(SECCOMP_FILTER_FLAG_TSYNC | Flags), &prog);
            if (rc > 0)
            {
                throw new ShimException(StatusCode.Internal,
                    $"seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread {rc} could not be given the filter");
            }
            if (rc < 0)
            {
                throw Failure($"seccomp(SECCOMP_SET_MODE_FILTER, flags 0x{SECCOMP_FILTER_FLAG_TSYNC | Flags:x})", Marshal.GetLastPInvokeError());
            }
        }
    }

    private static ShimException Failure(string call, int errno) =>
        new(StatusCode.Internal, $"{call}: {Marshal.GetPInvokeErrorMessage(errno)}");

    // glibc has no seccomp() wrapper; the number is per architecture.
    private static nint SeccompSyscallNumber() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 317,
        Architecture.Arm64 => 277,
        var other => throw new ShimException(StatusCode.Unimplemented, $"seccomp: no system call number known for {other}"),
    };

    /// <summary>struct sock_fprog: the instruction count, then (aligned) the pointer to the instructions.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct SockFprog
    {
        public ushort Length;
        public byte* Filter;
    }

    // syscall(2) is variadic in C; glibc's is a register shuffle that reads its arguments as longs, so a fixed
    // signature of pointer-sized integers is what it sees.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static unsafe partial nint Syscall(nint number, nint operation, nint flags, SockFprog* prog);
}
