using System.Buffers.Binary;
using System.Text;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Containerd.Shimkit.Seccomp;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// <see cref="SeccompCompiler"/>: what it refuses (naming the field), what it compiles, and the shape of the program
/// it exports. What the programs do in a real kernel is <see cref="KitSeccompBehaviourTests"/>.
/// </summary>
public sealed class KitSeccompCompilerTests
{
    // BPF opcodes and the seccomp_data layout the kernel's seccomp checker allows (kernel/seccomp.c).
    private const ushort BpfRetK = 0x06;
    private const ushort BpfLdWAbs = 0x20;
    private const uint AuditArchX86_64 = 0xC000003E;
    private const uint AuditArchI386 = 0x40000003;

    /// <summary>Reads <c>linux.seccomp</c> from a spec, as the shim does from config.json.</summary>
    internal static LinuxSeccomp Profile(string json) =>
        Spec.Parse(Encoding.UTF8.GetBytes($$$"""{"ociVersion": "1.0.2", "linux": {"seccomp": {{{json}}}}}"""), "config.json")
            .Linux!.Seccomp!;

    public static TheoryData<string, string> Refused => new()
    {
        { """{"syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}""", "linux.seccomp.defaultAction: no action given" },
        { """{"defaultAction": "SCMP_ACT_NOTIFY"}""", "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is not supported" },
        { """{"defaultAction": "SCMP_ACT_DENY"}""", "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_DENY\"" },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["b"], "action": "SCMP_ACT_ERRNO"}, {"names": ["c"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getppid"], "action": "X"}]}""",
            "linux.seccomp.syscalls[3].action: unknown action \"X\""
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO"}, {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}""",
            "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY is not supported"
        },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}""", "linux.seccomp.listenerPath: no seccomp agent is supported" },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}""", "linux.seccomp.listenerMetadata: no seccomp agent is supported" },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}""",
            "linux.seccomp.flags[1]: unsupported flag \"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\""
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_VAX"]}""",
            "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\""
        },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}""", "linux.seccomp.architectures[0]: unknown architecture \"x86_64\"" },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}""", "linux.seccomp.syscalls[0].names: no system call named" },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}""", "linux.seccomp.syscalls[0].names: no system call named" },
        { """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid", ""], "action": "SCMP_ACT_ERRNO"}]}""", "linux.seccomp.syscalls[0].names[1]: empty name" },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_APPROX"}]}]}""",
            "linux.seccomp.syscalls[0].args[1].op: unknown comparison \"SCMP_CMP_APPROX\""
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]}""",
            "linux.seccomp.syscalls[0].args[0].op: unknown comparison \"\""
        },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}""",
            "linux.seccomp.syscalls[0].args[0].index: 6 is not a system call argument (0-5)"
        },
        {
            """{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}""",
            "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not SCMP_ACT_ALLOW"
        },
        { """{"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}""", "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not SCMP_ACT_KILL" },
        { """{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095}""", "linux.seccomp.defaultErrnoRet: 4095 is out of range for SCMP_ACT_ERRNO (0-4094)" },
        {
            """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]}""",
            "linux.seccomp.syscalls[0].errnoRet: 65536 is out of range for SCMP_ACT_TRACE (0-65535)"
        },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_malformed_or_unsupported_profile_is_refused_naming_the_field(string json, string message)
    {
        var e = Assert.Throws<ShimException>(() => SeccompCompiler.Compile(Profile(json)));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData("SCMP_ACT_KILL", null, 0x00000000u)]
    [InlineData("SCMP_ACT_KILL_THREAD", null, 0x00000000u)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, 0x80000000u)]
    [InlineData("SCMP_ACT_TRAP", null, 0x00030000u)]
    [InlineData("SCMP_ACT_ERRNO", null, 0x00050001u)]
    [InlineData("SCMP_ACT_ERRNO", 0u, 0x00050000u)]
    [InlineData("SCMP_ACT_ERRNO", 38u, 0x00050026u)]
    [InlineData("SCMP_ACT_ERRNO", 4094u, 0x00050FFEu)]
    [InlineData("SCMP_ACT_TRACE", null, 0x7ff00001u)]
    [InlineData("SCMP_ACT_TRACE", 4242u, 0x7ff01092u)]
    [InlineData("SCMP_ACT_LOG", null, 0x7ffc0000u)]
    [InlineData("SCMP_ACT_ALLOW", null, 0x7fff0000u)]
    public void Every_action_compiles_to_its_seccomp_return_value_as_rule_and_as_default(string action, uint? errno, uint ret)
    {
        var errnoJson = errno is null ? "" : $", \"errnoRet\": {errno}";
        var other = action == "SCMP_ACT_ALLOW" ? "SCMP_ACT_KILL_PROCESS" : "SCMP_ACT_ALLOW";
        var asRule = Compile($$"""{"defaultAction": "{{other}}", "syscalls": [{"names": ["getppid"], "action": "{{action}}"{{errnoJson}}}]}""");
        Assert.Contains(ret, Returns(asRule));

        var defaultErrno = errno is null ? "" : $", \"defaultErrnoRet\": {errno}";
        var asDefault = Compile($$"""{"defaultAction": "{{action}}"{{defaultErrno}}, "syscalls": [{"names": ["exit_group"], "action": "{{other}}"}]}""");
        Assert.Contains(ret, Returns(asDefault));
    }

    [Theory]
    [InlineData("SCMP_CMP_NE")]
    [InlineData("SCMP_CMP_LT")]
    [InlineData("SCMP_CMP_LE")]
    [InlineData("SCMP_CMP_EQ")]
    [InlineData("SCMP_CMP_GE")]
    [InlineData("SCMP_CMP_GT")]
    [InlineData("SCMP_CMP_MASKED_EQ")]
    public void Every_comparison_compiles_and_loads_the_argument(string op)
    {
        var filter = Compile($$"""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 2, "value": 4294967301, "valueTwo": 5, "op": "{{op}}"}]}]}
            """);
        AssertWellFormed(filter);
        // seccomp_data.args[2] is at offset 16 + 2*8; libseccomp compares its two 32-bit halves.
        var loads = Instructions(filter).Where(i => i.Code == BpfLdWAbs).Select(i => i.K).ToHashSet();
        Assert.Contains(32u, loads);
        Assert.Contains(36u, loads);
    }

    [Fact]
    public void Architectures_are_each_checked_before_any_rule()
    {
        var filter = Compile("""
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
             "syscalls": [{"names": ["getppid", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}
            """);
        AssertWellFormed(filter);
        var insns = Instructions(filter);
        // The first load is seccomp_data.arch; the program compares it with each architecture's audit value.
        Assert.Equal((BpfLdWAbs, 4u), (insns[0].Code, insns[0].K));
        var constants = insns.Select(i => i.K).ToHashSet();
        Assert.Contains(AuditArchX86_64, constants);
        Assert.Contains(AuditArchI386, constants);
        // x86's getppid is 64; x32 shares x86-64's audit value and numbers its calls from bit 30 (__X32_SYSCALL_BIT).
        Assert.Contains(64u, constants);
        Assert.Contains(0x40000000u + 110, constants);

        var nativeOnly = Compile("""{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getppid", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}""");
        Assert.DoesNotContain(AuditArchI386, Instructions(nativeOnly).Select(i => i.K));
    }

    [Fact]
    public void Flags_travel_beside_the_program_and_tsync_is_always_done()
    {
        Assert.Equal(0u, Compile("""{"defaultAction": "SCMP_ACT_ALLOW"}""").Flags);
        Assert.Equal(SeccompFilter.FlagLog, Compile("""{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}""").Flags);
        Assert.Equal(SeccompFilter.FlagLog | SeccompFilter.FlagSpecAllow,
            Compile("""{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]}""").Flags);
    }

    [Fact]
    public void Unknown_system_calls_and_rules_that_repeat_the_default_change_nothing()
    {
        var plain = Compile("""{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}""");
        var noisy = Compile("""
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["not_a_syscall", "getppid", "sys_from_the_future"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
              {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"}]}
            """);
        Assert.Equal(plain.Program.ToArray(), noisy.Program.ToArray());
        // A rule with another errno than the default's is not the default action, and is kept.
        var distinct = Compile("""{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}, {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}""");
        Assert.Contains(0x00050026u, Returns(distinct));
    }

    [Fact]
    public void A_long_allow_list_compiles_to_a_well_formed_program()
    {
        var filter = Compile(KitSeccompBehaviourTests.AllowList(["getppid"]));
        AssertWellFormed(filter);
        Assert.InRange(filter.InstructionCount, 40, SeccompFilter.MaxInstructions);
    }

    [Fact]
    public void The_byte_form_round_trips_and_refuses_what_is_not_a_profile()
    {
        var filter = Compile("""{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}""");
        var bytes = filter.ToBytes();
        Assert.Equal("SCF1"u8.ToArray(), bytes[..4]);
        Assert.Equal(SeccompFilter.FlagLog, BitConverter.ToUInt32(bytes, 4));
        Assert.Equal(8 + filter.InstructionCount * 8, bytes.Length);

        var back = SeccompFilter.Parse(bytes);
        Assert.Equal(filter.Flags, back.Flags);
        Assert.Equal(filter.Program.ToArray(), back.Program.ToArray());

        Assert.Throws<InvalidDataException>(() => SeccompFilter.Parse(bytes[..7]));
        Assert.Throws<InvalidDataException>(() => SeccompFilter.Parse(bytes[..8]));
        Assert.Throws<InvalidDataException>(() => SeccompFilter.Parse(bytes[..^1]));
        Assert.Throws<InvalidDataException>(() => SeccompFilter.Parse([.. "SCF2"u8, .. bytes[4..]]));
        var badFlags = bytes.ToArray();
        BitConverter.TryWriteBytes(badFlags.AsSpan(4), 8u); // SECCOMP_FILTER_FLAG_NEW_LISTENER
        Assert.Throws<InvalidDataException>(() => SeccompFilter.Parse(badFlags));
    }

    internal static SeccompFilter Compile(string json) => SeccompCompiler.Compile(Profile(json));

    internal readonly record struct Insn(ushort Code, byte Jt, byte Jf, uint K);

    internal static Insn[] Instructions(SeccompFilter filter)
    {
        var program = filter.Program.Span;
        var insns = new Insn[filter.InstructionCount];
        for (var i = 0; i < insns.Length; i++)
        {
            var s = program.Slice(i * 8, 8);
            insns[i] = new Insn(BitConverter.ToUInt16(s), s[2], s[3], BitConverter.ToUInt32(s[4..]));
        }
        return insns;
    }

    private static HashSet<uint> Returns(SeccompFilter filter) =>
        Instructions(filter).Where(i => i.Code == BpfRetK).Select(i => i.K).ToHashSet();

    /// <summary>
    /// The rules the kernel's seccomp checker applies to a classic BPF program, checked here without loading it:
    /// every jump lands inside the program, it cannot run off its end, and it only loads aligned 32-bit words of
    /// struct seccomp_data (64 bytes: nr, arch, instruction pointer, six arguments).
    /// </summary>
    private static void AssertWellFormed(SeccompFilter filter)
    {
        var insns = Instructions(filter);
        Assert.InRange(insns.Length, 1, SeccompFilter.MaxInstructions);
        Assert.Equal(BpfRetK, insns[^1].Code);
        for (var i = 0; i < insns.Length; i++)
        {
            var insn = insns[i];
            switch (insn.Code & 0x07)
            {
                case 0x00: // BPF_LD: only BPF_W | BPF_ABS within seccomp_data
                    Assert.Equal(BpfLdWAbs, insn.Code);
                    Assert.True(insn.K < 64 && insn.K % 4 == 0, $"instruction {i} loads offset {insn.K}");
                    break;
                case 0x05: // BPF_JMP
                    var ja = (insn.Code & 0xf0) == 0x00;
                    var longest = ja ? insn.K : Math.Max(insn.Jt, insn.Jf);
                    Assert.True(i + 1 + longest < insns.Length, $"instruction {i} jumps past the end");
                    break;
                case 0x06: // BPF_RET
                    break;
                default:
                    // libseccomp's programs need nothing but loads, ALU on the accumulator, jumps and returns.
                    Assert.True((insn.Code & 0x07) is 0x04 or 0x01 or 0x02 or 0x03 or 0x07, $"instruction {i}: code 0x{insn.Code:x}");
                    break;
            }
        }
    }
}
