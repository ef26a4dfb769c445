using System.Buffers.Binary;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// cgroup v2 has no device files: a <c>BPF_PROG_TYPE_CGROUP_DEVICE</c> program attached to the cgroup decides every
/// open and mknod of a device node by its processes. This writes that program for a <see cref="DeviceRuleSet"/>, with
/// v1's semantics: in whitelist mode an access is allowed when one exception covers every kind of access asked for,
/// in blacklist mode it is denied when an exception covers any of them.
/// </summary>
internal static class DeviceFilterProgram
{
    /// <summary>The size of one eBPF instruction.</summary>
    public const int InstructionSize = 8;

    // struct bpf_cgroup_dev_ctx: u32 access_type (access << 16 | type), u32 major, u32 minor.
    private const short AccessTypeOffset = 0;
    private const short MajorOffset = 4;
    private const short MinorOffset = 8;

    // BPF_DEVCG_DEV_BLOCK and BPF_DEVCG_DEV_CHAR.
    private const int BlockDevice = 1;
    private const int CharDevice = 2;

    // Opcodes: class | operation | source. 32-bit ALU and JMP32 compare the low halves, so a device number of 2^31 or
    // more compares as the unsigned value it is (a 64-bit compare would sign-extend the immediate).
    private const byte LoadWord = 0x61;       // BPF_LDX | BPF_MEM | BPF_W
    private const byte MovImm = 0xb4;         // BPF_ALU | BPF_MOV | BPF_K
    private const byte MovReg = 0xbc;         // BPF_ALU | BPF_MOV | BPF_X
    private const byte AndImm = 0x54;         // BPF_ALU | BPF_AND | BPF_K
    private const byte RshImm = 0x74;         // BPF_ALU | BPF_RSH | BPF_K
    private const byte JumpNotEqualImm = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
    private const byte JumpEqualImm = 0x16;   // BPF_JMP32 | BPF_JEQ | BPF_K
    private const byte Exit = 0x95;           // BPF_JMP | BPF_EXIT

    // Registers: r0 the verdict (1 allows, 0 denies), r1 the context, then what is read from it once.
    private const byte R0 = 0, R1 = 1, Type = 2, Access = 3, Major = 4, Minor = 5;

    /// <summary>The program's instructions, <see cref="InstructionSize"/> bytes each, as the kernel reads them.</summary>
    public static byte[] Build(DeviceRuleSet rules)
    {
        var code = new List<Instruction>
        {
            new(LoadWord, Type, R1, AccessTypeOffset, 0),
            new(MovReg, Access, Type, 0, 0),
            new(RshImm, Access, 0, 0, 16),
            new(AndImm, Type, 0, 0, 0xffff),
            new(LoadWord, Major, R1, MajorOffset, 0),
            new(LoadWord, Minor, R1, MinorOffset, 0),
        };
        var verdict = rules.DefaultAllow ? 0 : 1;
        foreach (var (match, access) in rules.Exceptions)
        {
            // Each test jumps past the end of this block when the device is not the exception's.
            var block = new List<(byte Op, byte Reg, int Imm)>
            {
                (JumpNotEqualImm, Type, match.Type == 'b' ? BlockDevice : CharDevice),
            };
            if (match.Major != DeviceMatch.Any)
            {
                block.Add((JumpNotEqualImm, Major, unchecked((int)(uint)match.Major)));
            }
            if (match.Minor != DeviceMatch.Any)
            {
                block.Add((JumpNotEqualImm, Minor, unchecked((int)(uint)match.Minor)));
            }
            var masked = access != DeviceAccess.All;
            var length = block.Count + (masked ? 3 : 0) + 2;
            for (var i = 0; i < block.Count; i++)
            {
                code.Add(new Instruction(block[i].Op, block[i].Reg, 0, (short)(length - i - 1), block[i].Imm));
            }
            if (masked)
            {
                // An allowance must cover every kind asked for: nothing may be left outside it. A denial strikes when
                // it covers any of them.
                code.Add(new Instruction(MovReg, R0, Access, 0, 0));
                code.Add(new Instruction(AndImm, R0, 0, 0, (int)(rules.DefaultAllow ? access : ~access & DeviceAccess.All)));
                code.Add(new Instruction(rules.DefaultAllow ? JumpEqualImm : JumpNotEqualImm, R0, 0, 2, 0));
            }
            code.Add(new Instruction(MovImm, R0, 0, 0, verdict));
            code.Add(new Instruction(Exit, 0, 0, 0, 0));
        }
        code.Add(new Instruction(MovImm, R0, 0, 0, rules.DefaultAllow ? 1 : 0));
        code.Add(new Instruction(Exit, 0, 0, 0, 0));

        var bytes = new byte[code.Count * InstructionSize];
        for (var i = 0; i < code.Count; i++)
        {
            code[i].Write(bytes.AsSpan(i * InstructionSize, InstructionSize));
        }
        return bytes;
    }

    /// <summary>struct bpf_insn: opcode, dst_reg (low nibble) and src_reg (high nibble), a signed 16-bit offset (jumps
    /// count instructions from the next one), a signed 32-bit immediate; little-endian like the machines .NET runs on.</summary>
    private readonly record struct Instruction(byte Op, byte Dst, byte Src, short Offset, int Imm)
    {
        public void Write(Span<byte> to)
        {
            to[0] = Op;
            to[1] = (byte)(Dst | (Src << 4));
            BinaryPrimitives.WriteInt16LittleEndian(to[2..], Offset);
            BinaryPrimitives.WriteInt32LittleEndian(to[4..], Imm);
        }
    }
}
