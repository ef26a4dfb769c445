using System.Runtime.InteropServices;
using System.Text;
using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// Puts a device filter (<see cref="DeviceFilterProgram"/>) on a cgroup v2 directory through <c>bpf(2)</c>: loads it
/// as a <c>BPF_PROG_TYPE_CGROUP_DEVICE</c> program, attaches it with <c>BPF_F_ALLOW_MULTI</c>, then detaches the
/// device programs that were there before, so the cgroup is never without a filter while it changes. The cgroup holds
/// the attached program; nothing needs to be kept or closed afterwards, and removing the cgroup releases it.
/// </summary>
internal static unsafe partial class BpfDeviceFilter
{
    private const int BPF_PROG_LOAD = 5;
    private const int BPF_PROG_ATTACH = 8;
    private const int BPF_PROG_DETACH = 9;
    private const int BPF_PROG_GET_FD_BY_ID = 13;
    private const int BPF_PROG_QUERY = 16;
    private const uint BPF_PROG_TYPE_CGROUP_DEVICE = 15;
    private const uint BPF_CGROUP_DEVICE = 6;
    private const uint BPF_F_ALLOW_MULTI = 2;

    private const int EPERM = 1;
    private const int ENOSPC = 28;
    private const int RLIMIT_MEMLOCK = 8;

    // union bpf_attr, zero-filled: the kernel accepts a larger buffer than it knows as long as the rest is zero.
    private const int AttrSize = 128;
    private const int LogSize = 64 * 1024;

    /// <summary>Attaches <paramref name="program"/> to the cgroup at <paramref name="dir"/> and detaches the device
    /// programs attached to it before.</summary>
    /// <exception cref="ShimException">FailedPrecondition naming the cgroup, the step and the kernel's reason (for a
    /// program the verifier refuses, with its log).</exception>
    public static void Replace(string dir, byte[] program)
    {
        var cgroup = Libc.Open(dir, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        if (cgroup < 0)
        {
            throw Failure(dir, "open", Marshal.GetLastPInvokeError());
        }
        try
        {
            var before = AttachedPrograms(dir, cgroup);
            var prog = Load(dir, program);
            try
            {
                var attr = stackalloc byte[AttrSize];
                new Span<byte>(attr, AttrSize).Clear();
                *(uint*)attr = (uint)cgroup;               // target_fd
                *(uint*)(attr + 4) = (uint)prog;           // attach_bpf_fd
                *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;    // attach_type
                *(uint*)(attr + 12) = BPF_F_ALLOW_MULTI;   // attach_flags
                if (Bpf(BPF_PROG_ATTACH, attr) < 0)
                {
                    throw Failure(dir, "BPF_PROG_ATTACH", Marshal.GetLastPInvokeError());
                }
            }
            finally
            {
                Libc.Close(prog);
            }
            foreach (var id in before)
            {
                Detach(dir, cgroup, id);
            }
        }
        finally
        {
            Libc.Close(cgroup);
        }
    }

    /// <summary>The ids of the device programs attached to the cgroup open at <paramref name="cgroup"/>.</summary>
    public static List<uint> AttachedPrograms(string dir, int cgroup)
    {
        var count = 16;
        var attr = stackalloc byte[AttrSize];
        while (true)
        {
            var ids = new uint[count];
            new Span<byte>(attr, AttrSize).Clear();
            fixed (uint* p = ids)
            {
                *(uint*)attr = (uint)cgroup;               // target_fd
                *(uint*)(attr + 4) = BPF_CGROUP_DEVICE;    // attach_type
                *(ulong*)(attr + 16) = (ulong)p;           // prog_ids
                *(uint*)(attr + 24) = (uint)count;         // prog_cnt: room in, programs out
                if (Bpf(BPF_PROG_QUERY, attr) < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == ENOSPC)
                    {
                        count = (int)*(uint*)(attr + 24) + 16;
                        continue;
                    }
                    throw Failure(dir, "BPF_PROG_QUERY", errno);
                }
            }
            return [.. ids.Take((int)*(uint*)(attr + 24))];
        }
    }

    private static int Load(string dir, byte[] program)
    {
        var fd = Load(program, null);
        if (fd < 0 && Marshal.GetLastPInvokeError() == EPERM)
        {
            // Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK rather than to the memory cgroup.
            var unlimited = stackalloc ulong[2] { ulong.MaxValue, ulong.MaxValue };
            if (SetRlimit(RLIMIT_MEMLOCK, unlimited) == 0)
            {
                fd = Load(program, null);
            }
        }
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // Load it again with the verifier's log, which says what it did not accept.
            var log = new byte[LogSize];
            var retry = Load(program, log);
            if (retry >= 0)
            {
                Libc.Close(retry);
            }
            var text = Encoding.UTF8.GetString(log, 0, Math.Max(0, Array.IndexOf(log, (byte)0))).Trim();
            throw Failure(dir, "BPF_PROG_LOAD", errno, text.Length > 0 ? $"; verifier: {text.ReplaceLineEndings("; ")}" : "");
        }
        return fd;
    }

    private static int Load(byte[] program, byte[]? log)
    {
        var license = "Apache-2.0\0"u8;
        var name = "shim_devices\0"u8;
        var attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        fixed (byte* insns = program, lic = license, buf = log)
        {
            *(uint*)attr = BPF_PROG_TYPE_CGROUP_DEVICE;                                   // prog_type
            *(uint*)(attr + 4) = (uint)(program.Length / DeviceFilterProgram.InstructionSize); // insn_cnt
            *(ulong*)(attr + 8) = (ulong)insns;                                           // insns
            *(ulong*)(attr + 16) = (ulong)lic;                                            // license
            if (log is not null)
            {
                *(uint*)(attr + 24) = 1;                                                  // log_level
                *(uint*)(attr + 28) = (uint)log.Length;                                   // log_size
                *(ulong*)(attr + 32) = (ulong)buf;                                        // log_buf
            }
            name.CopyTo(new Span<byte>(attr + 48, 16));                                   // prog_name
            return (int)Bpf(BPF_PROG_LOAD, attr);
        }
    }

    private static void Detach(string dir, int cgroup, uint id)
    {
        var attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(uint*)attr = id;
        var prog = (int)Bpf(BPF_PROG_GET_FD_BY_ID, attr);
        if (prog < 0)
        {
            throw Failure(dir, $"BPF_PROG_GET_FD_BY_ID of the program it had before ({id})", Marshal.GetLastPInvokeError());
        }
        try
        {
            new Span<byte>(attr, AttrSize).Clear();
            *(uint*)attr = (uint)cgroup;               // target_fd
            *(uint*)(attr + 4) = (uint)prog;           // attach_bpf_fd
            *(uint*)(attr + 8) = BPF_CGROUP_DEVICE;    // attach_type
            if (Bpf(BPF_PROG_DETACH, attr) < 0)
            {
                throw Failure(dir, $"BPF_PROG_DETACH of the program it had before ({id})", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            Libc.Close(prog);
        }
    }

    private static ShimException Failure(string dir, string step, int errno, string detail = "") =>
        new(StatusCode.FailedPrecondition, $"device filter of cgroup {dir}: {step}: {Libc.StrError(errno)}{detail}");

    private static long Bpf(int cmd, byte* attr) => Syscall(SysBpf, cmd, attr, AttrSize);

    private static long SysBpf => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        var other => throw new ShimException(StatusCode.Unimplemented, $"cgroup v2 device rules: no bpf(2) system call number known for {other}"),
    };

    // syscall(2) is variadic; glibc's implementation only moves its integer arguments into place, so a fixed-argument
    // P/Invoke is a correct call of it on the 64-bit ABIs .NET supports.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int cmd, byte* attr, uint size);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRlimit(int resource, ulong* limit);
}
