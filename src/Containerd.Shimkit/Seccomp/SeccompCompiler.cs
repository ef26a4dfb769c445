using System.Runtime.InteropServices;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Seccomp;

/// <summary>
/// Compiles an OCI seccomp profile (<c>linux.seccomp</c>) into a <see cref="SeccompFilter"/> through libseccomp,
/// with runc's reading of the profile: SCMP_ACT_ERRNO and SCMP_ACT_TRACE return EPERM unless an errno is given, a
/// rule whose action is the default one is dropped, a system call libseccomp does not know for the native
/// architecture is skipped (it is newer than this libseccomp, or of another architecture), and a rule with several
/// conditions on one argument becomes one rule per condition (libseccomp compares an argument once per rule).
/// Nothing is installed: libseccomp's context is only exported.
/// </summary>
public static partial class SeccompCompiler
{
    private const string Field = "linux.seccomp";
    private const uint DefaultErrno = 1; // EPERM, what runc returns when a profile names no errno
    // libseccomp 2.5 refuses SCMP_ACT_ERRNO(n) for n ≥ 4095, the kernel's MAX_ERRNO (to which it clamps the datum).
    private const uint MaxErrno = 4094;
    private const int MaxArgs = 6;
    private const int EEXIST = 17;

    private const uint ActKillThread = 0x00000000;
    private const uint ActKillProcess = 0x80000000;
    private const uint ActTrap = 0x00030000;
    private const uint ActErrno = 0x00050000;
    private const uint ActTrace = 0x7ff00000;
    private const uint ActLog = 0x7ffc0000;
    private const uint ActAllow = 0x7fff0000;

    private static readonly Dictionary<string, uint> Actions = new(StringComparer.Ordinal)
    {
        ["SCMP_ACT_KILL"] = ActKillThread,
        ["SCMP_ACT_KILL_THREAD"] = ActKillThread,
        ["SCMP_ACT_KILL_PROCESS"] = ActKillProcess,
        ["SCMP_ACT_TRAP"] = ActTrap,
        ["SCMP_ACT_ERRNO"] = ActErrno,
        ["SCMP_ACT_TRACE"] = ActTrace,
        ["SCMP_ACT_LOG"] = ActLog,
        ["SCMP_ACT_ALLOW"] = ActAllow,
    };

    private static readonly Dictionary<string, int> Operators = new(StringComparer.Ordinal)
    {
        ["SCMP_CMP_NE"] = 1,
        ["SCMP_CMP_LT"] = 2,
        ["SCMP_CMP_LE"] = 3,
        ["SCMP_CMP_EQ"] = 4,
        ["SCMP_CMP_GE"] = 5,
        ["SCMP_CMP_GT"] = 6,
        ["SCMP_CMP_MASKED_EQ"] = 7,
    };
    private const int OpMaskedEq = 7;

    private static readonly Dictionary<string, uint> Flags = new(StringComparer.Ordinal)
    {
        ["SECCOMP_FILTER_FLAG_LOG"] = SeccompFilter.FlagLog,
        ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"] = SeccompFilter.FlagSpecAllow,
        // Asked for, and always done: the filter is loaded for every thread (SeccompFilter.Install).
        ["SECCOMP_FILTER_FLAG_TSYNC"] = 0,
    };

    // libseccomp keeps process-wide state (its API level, the kernel's supported actions) that it fills in lazily,
    // and does not promise that concurrent contexts are safe; containers are created concurrently.
    private static readonly Lock Gate = new();

    /// <summary>Compiles <paramref name="profile"/>.</summary>
    /// <exception cref="ShimException">InvalidArgument naming the field for a malformed or unsupported profile
    /// (e.g. <c>linux.seccomp.syscalls[3].action: unknown action "X"</c>); FailedPrecondition when libseccomp is not
    /// installed.</exception>
    public static SeccompFilter Compile(LinuxSeccomp profile)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (!string.IsNullOrEmpty(profile.ListenerPath))
        {
            throw Invalid($"{Field}.listenerPath", "no seccomp agent is supported, so SCMP_ACT_NOTIFY has no listener");
        }
        if (!string.IsNullOrEmpty(profile.ListenerMetadata))
        {
            throw Invalid($"{Field}.listenerMetadata", "no seccomp agent is supported, so SCMP_ACT_NOTIFY has no listener");
        }
        var flags = FilterFlags(profile.Flags);
        var defaultAction = Action(profile.DefaultAction, profile.DefaultErrnoRet, $"{Field}.defaultAction", $"{Field}.defaultErrnoRet");
        var rules = Rules(profile.Syscalls ?? []);
        try
        {
            lock (Gate)
            {
                return Build(profile.Architectures ?? [], defaultAction, rules, flags);
            }
        }
        catch (DllNotFoundException e)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"{Field}: cannot compile the profile: {Libseccomp.Lib} is not installed (Debian package libseccomp2): {e.Message}", e);
        }
    }

    /// <summary>One rule of the profile, checked: its system call names, action and libseccomp comparisons.</summary>
    private sealed record Rule(int Index, List<string> Names, uint Action, Libseccomp.ArgCmp[] Conditions, bool SplitConditions);

    private static uint FilterFlags(List<string>? names)
    {
        uint flags = 0;
        for (var i = 0; i < (names?.Count ?? 0); i++)
        {
            if (!Flags.TryGetValue(names![i], out var flag))
            {
                throw Invalid($"{Field}.flags[{i}]",
                    $"unsupported flag \"{names[i]}\" (supported: {string.Join(", ", Flags.Keys)})");
            }
            flags |= flag;
        }
        return flags;
    }

    private static uint Action(string name, uint? errnoRet, string field, string errnoField)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw Invalid(field, "no action given");
        }
        if (name == "SCMP_ACT_NOTIFY")
        {
            throw Invalid(field, "SCMP_ACT_NOTIFY is not supported: it hands system calls to a seccomp agent, and none is supported");
        }
        if (!Actions.TryGetValue(name, out var action))
        {
            throw Invalid(field, $"unknown action \"{name}\"");
        }
        if (errnoRet is not { } errno)
        {
            return action is ActErrno or ActTrace ? action | DefaultErrno : action;
        }
        if (action is not (ActErrno or ActTrace))
        {
            throw Invalid(errnoField, $"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not {name}");
        }
        var max = action == ActErrno ? MaxErrno : ushort.MaxValue;
        if (errno > max)
        {
            throw Invalid(errnoField, $"{errno} is out of range for {name} (0-{max})");
        }
        return action | errno;
    }

    private static List<Rule> Rules(List<LinuxSyscall> syscalls)
    {
        var rules = new List<Rule>(syscalls.Count);
        for (var i = 0; i < syscalls.Count; i++)
        {
            var field = $"{Field}.syscalls[{i}]";
            var syscall = syscalls[i] ?? throw Invalid(field, "null rule");
            if (syscall.Names is not { Count: > 0 } names)
            {
                throw Invalid($"{field}.names", "no system call named");
            }
            for (var n = 0; n < names.Count; n++)
            {
                if (string.IsNullOrEmpty(names[n]))
                {
                    throw Invalid($"{field}.names[{n}]", "empty name");
                }
            }
            var action = Action(syscall.Action, syscall.ErrnoRet, $"{field}.action", $"{field}.errnoRet");
            var args = syscall.Args ?? [];
            var conditions = new Libseccomp.ArgCmp[args.Count];
            var seen = new bool[MaxArgs];
            var split = false;
            for (var a = 0; a < args.Count; a++)
            {
                var arg = args[a] ?? throw Invalid($"{field}.args[{a}]", "null condition");
                if (arg.Index >= MaxArgs)
                {
                    throw Invalid($"{field}.args[{a}].index", $"{arg.Index} is not a system call argument (0-{MaxArgs - 1})");
                }
                if (!Operators.TryGetValue(arg.Op, out var op))
                {
                    throw Invalid($"{field}.args[{a}].op",
                        $"unknown comparison \"{arg.Op}\" (supported: {string.Join(", ", Operators.Keys)})");
                }
                split |= seen[arg.Index];
                seen[arg.Index] = true;
                // SCMP_CMP_MASKED_EQ: value is the mask, valueTwo what the masked argument must equal. Every other
                // comparison has one datum.
                conditions[a] = new Libseccomp.ArgCmp
                {
                    Arg = arg.Index, Op = op, DatumA = arg.Value, DatumB = op == OpMaskedEq ? arg.ValueTwo : 0,
                };
            }
            rules.Add(new Rule(i, names, action, conditions, split));
        }
        return rules;
    }

    private static unsafe SeccompFilter Build(List<string> architectures, uint defaultAction, List<Rule> rules, uint flags)
    {
        using var ctx = Libseccomp.Init(defaultAction);
        if (ctx.IsInvalid)
        {
            throw Invalid($"{Field}.defaultAction", "libseccomp refused the default action");
        }
        for (var i = 0; i < architectures.Count; i++)
        {
            var token = ArchToken(architectures[i]);
            if (token == 0)
            {
                throw Invalid($"{Field}.architectures[{i}]", $"unknown architecture \"{architectures[i]}\"");
            }
            // The native architecture is in every new context already.
            var rc = Libseccomp.ArchAdd(ctx, token);
            if (rc < 0 && rc != -EEXIST)
            {
                throw Invalid($"{Field}.architectures[{i}]", $"libseccomp cannot add \"{architectures[i]}\": {Errno(rc)}");
            }
        }
        var added = 0;
        foreach (var rule in rules)
        {
            if (rule.Action == defaultAction)
            {
                // libseccomp refuses a rule that changes nothing; runc drops it, and so do we.
                continue;
            }
            foreach (var name in rule.Names)
            {
                var nr = Libseccomp.SyscallResolveName(name);
                if (nr == Libseccomp.NrScmpError)
                {
                    continue;
                }
                fixed (Libseccomp.ArgCmp* conditions = rule.Conditions)
                {
                    if (!rule.SplitConditions)
                    {
                        Add(ctx, rule, name, nr, conditions, (uint)rule.Conditions.Length);
                    }
                    else
                    {
                        for (var c = 0; c < rule.Conditions.Length; c++)
                        {
                            Add(ctx, rule, name, nr, conditions + c, 1);
                        }
                    }
                }
                added++;
            }
        }
        // A binary search over the system call numbers instead of a linear chain for long profiles, as runc does
        // (libseccomp 2.5.4 and older mis-build the tree of a filter without rules, hence the threshold). The
        // attribute is read when the program is generated, at the export.
        if (added > 32)
        {
            _ = Libseccomp.AttrSet(ctx, Libseccomp.FilterAttrOptimize, 2);
        }
        return new SeccompFilter(flags, Export(ctx));
    }

    private static unsafe void Add(Libseccomp.Context ctx, Rule rule, string name, int nr, Libseccomp.ArgCmp* conditions, uint count)
    {
        var rc = Libseccomp.RuleAddArray(ctx, rule.Action, nr, count, conditions);
        if (rc < 0)
        {
            throw Invalid($"{Field}.syscalls[{rule.Index}]", $"libseccomp refused the rule for \"{name}\": {Errno(rc)}");
        }
    }

    // OCI names are libseccomp's constants (SCMP_ARCH_X86_64); libseccomp resolves its own lower-case names
    // ("x86_64"), which are the constants' suffixes.
    private static uint ArchToken(string name) =>
        name.StartsWith("SCMP_ARCH_", StringComparison.Ordinal) && name.Length > "SCMP_ARCH_".Length
            ? Libseccomp.ArchResolveName(name["SCMP_ARCH_".Length..].ToLowerInvariant())
            : 0;

    private static byte[] Export(Libseccomp.Context ctx)
    {
        // libseccomp 2.5 exports only to a file descriptor (seccomp_export_bpf_mem is 2.6): a memory file, read back.
        var fd = memfd_create("seccomp-export", MFD_CLOEXEC);
        if (fd < 0)
        {
            throw new ShimException(StatusCode.Internal,
                $"{Field}: memfd_create: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        using var file = new SafeFileHandle(fd, ownsHandle: true);
        var rc = Libseccomp.ExportBpf(ctx, fd);
        if (rc < 0)
        {
            throw new ShimException(StatusCode.Internal, $"{Field}: seccomp_export_bpf: {Errno(rc)}");
        }
        var program = new byte[RandomAccess.GetLength(file)];
        var read = 0;
        while (read < program.Length)
        {
            var n = RandomAccess.Read(file, program.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        var instructions = program.Length / SeccompFilter.InstructionSize;
        if (instructions > SeccompFilter.MaxInstructions)
        {
            throw Invalid(Field, $"the profile compiles to {instructions} BPF instructions, more than the kernel's {SeccompFilter.MaxInstructions}");
        }
        return program;
    }

    private static string Errno(int negative) => Marshal.GetPInvokeErrorMessage(-negative);

    private static ShimException Invalid(string field, string reason) => new(StatusCode.InvalidArgument, $"{field}: {reason}");

    private const uint MFD_CLOEXEC = 1;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);
}
