using System.Buffers.Binary;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The translation of <c>linux.resources.devices</c>: rules applied in order from deny-all (runc's semantics), the v1
/// writes from one state to another, and the v2 BPF program, run here by a small interpreter against every kind of
/// request and compared with what the v1 kernel decides for the same rules.
/// </summary>
public sealed class KitDeviceRulesTests
{
    private static LinuxDeviceCgroup Deny(string? type = null, long? major = null, long? minor = null, string? access = "rwm") =>
        new() { Allow = false, Type = type, Major = major, Minor = minor, Access = access };

    private static LinuxDeviceCgroup Allow(string? type = null, long? major = null, long? minor = null, string? access = "rwm") =>
        new() { Allow = true, Type = type, Major = major, Minor = minor, Access = access };

    /// <summary>What containerd's default spec and CRI give a container: deny all, then the usual character devices.</summary>
    private static readonly LinuxDeviceCgroup[] ContainerdDefaults =
    [
        Deny("a"),
        Allow("c", 1, 3), Allow("c", 1, 5), Allow("c", 1, 7), Allow("c", 1, 8), Allow("c", 1, 9), Allow("c", 5, 0),
        Allow("c", 5, 1), Allow("c", 5, 2), Allow("c", 136, null), Allow("c", 10, 200),
    ];

    private static DeviceRuleSet ForContainer(List<LinuxDeviceCgroup> rules) =>
        DeviceRuleSet.FromSpec(Containerd.Shim.Wasm.InstanceCgroup.WithRuncDevices(new LinuxResources { Devices = rules })!.Devices!);

    private static string Exceptions(DeviceRuleSet set) =>
        string.Join(", ", set.Exceptions.Select(e => $"{e.Key} {DeviceRule.Letters(e.Value)}"));

    [Fact]
    public void Deny_all_then_allows_is_a_whitelist_of_the_allows()
    {
        var set = DeviceRuleSet.FromSpec(ContainerdDefaults);
        Assert.False(set.DefaultAllow);
        Assert.Equal("c 1:3 rwm, c 1:5 rwm, c 1:7 rwm, c 1:8 rwm, c 1:9 rwm, c 5:0 rwm, c 5:1 rwm, c 5:2 rwm, c 10:200 rwm, c 136:* rwm",
            Exceptions(set));
    }

    [Fact]
    public void A_container_also_gets_the_devices_runc_always_allows()
    {
        // CRI's spec carries only the deny-all rule: runc still lets the container use null, zero, urandom and the rest.
        var cri = ForContainer([Deny("a")]);
        Assert.False(cri.DefaultAllow);
        Assert.Equal("b *:* m, c *:* m, c 1:3 rwm, c 1:5 rwm, c 1:7 rwm, c 1:8 rwm, c 1:9 rwm, c 5:0 rwm, c 5:2 rwm, c 136:* rwm",
            Exceptions(cri));
        // A disk the spec does not allow stays out; one it allows stays in.
        Assert.DoesNotContain("b 7:", Exceptions(cri));
        Assert.Contains("b 7:0 rw", Exceptions(ForContainer([Deny("a"), Allow("b", 7, 0, "rw")])));
        // A spec that allows everything keeps doing so.
        Assert.True(ForContainer([Allow("a")]).DefaultAllow);
        Assert.Null(Containerd.Shim.Wasm.InstanceCgroup.WithRuncDevices(new LinuxResources())!.Devices);
    }

    [Fact]
    public void A_rule_list_starts_from_deny_all_and_every_a_rule_starts_over()
    {
        Assert.Equal("nothing", DeviceRuleSet.FromSpec([]).ToString());
        Assert.Equal("c 1:3 rwm", DeviceRuleSet.FromSpec([Allow("c", 1, 3)]).ToString());
        // What came before a deny-all is forgotten.
        Assert.Equal("c 1:5 rwm", DeviceRuleSet.FromSpec([Allow("c", 1, 3), Deny("a"), Allow("c", 1, 5)]).ToString());
        var open = DeviceRuleSet.FromSpec([Deny("a"), Allow("c", 1, 3), Allow(null)]);
        Assert.True(open.DefaultAllow);
        Assert.Empty(open.Exceptions);
        // In blacklist mode the denials are the exceptions, and an allow takes (part of) one back.
        var black = DeviceRuleSet.FromSpec([Allow("a"), Deny("b", 8, null), Deny("c", 1, 1, "rw"), Allow("c", 1, 1, "w")]);
        Assert.True(black.DefaultAllow);
        Assert.Equal("c 1:1 r, b 8:* rwm", Exceptions(black));
    }

    [Fact]
    public void Rules_for_one_device_merge_and_a_deny_narrows_an_allow()
    {
        var set = DeviceRuleSet.FromSpec([Deny("a"), Allow("c", 1, 3, "r"), Allow("c", 1, 3, "w"), Allow("b", 7, 0, "rw"), Deny("b", 7, 0, "w")]);
        Assert.Equal("c 1:3 rw, b 7:0 r", Exceptions(set));
        // Absent and empty access mean all three, as Go's omitempty writes them.
        Assert.Equal("c 1:3 rwm", DeviceRuleSet.FromSpec([Allow("c", 1, 3, null)]).ToString());
        Assert.Equal("c 1:3 rwm", DeviceRuleSet.FromSpec([Allow("c", 1, 3, "")]).ToString());
        // -1 is "any", as some generators write it.
        Assert.Equal("c *:* m", DeviceRuleSet.FromSpec([Allow("c", -1, -1, "m")]).ToString());
    }

    [Fact]
    public void A_deny_inside_an_allowed_wildcard_is_refused_rather_than_silently_ignored()
    {
        var e = Assert.Throws<ShimException>(() => DeviceRuleSet.FromSpec([Deny("a"), Allow("c", null, null, "rwm"), Deny("c", 1, 3, "r")]));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("linux.resources.devices[2]", e.Message);
        Assert.Contains("c *:* rwm", e.Message);
        // Access the wildcard does not cover is no hole.
        Assert.Equal("c *:* m", DeviceRuleSet.FromSpec([Deny("a"), Allow("c", null, null, "m"), Deny("c", 1, 3, "r")]).ToString());
    }

    [Theory]
    [InlineData("x", 1L, 3L, "rwm", "type \"x\"")]
    [InlineData("c", 1L, 3L, "rwx", "access \"rwx\"")]
    [InlineData("c", 4294967296L, 3L, "r", "major 4294967296")]
    [InlineData("b", 1L, 4294967296L, "r", "minor 4294967296")]
    public void Bad_rules_are_refused_naming_the_rule(string type, long major, long minor, string access, string named)
    {
        var e = Assert.Throws<ShimException>(() => DeviceRuleSet.FromSpec([Deny("a"), Allow(type, major, minor, access)]));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains("linux.resources.devices[1]", e.Message);
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void V1_list_reads_back_a_whitelist_and_a_blacklist()
    {
        var white = DeviceRuleSet.FromList("c 1:3 rwm\nc 136:* rw\nb *:* m\n");
        Assert.False(white.DefaultAllow);
        Assert.Equal("b *:* m, c 1:3 rwm, c 136:* rw", Exceptions(white));
        var black = DeviceRuleSet.FromList("a *:* rwm\n");
        Assert.True(black.DefaultAllow);
        Assert.Empty(black.Exceptions);
        Assert.Throws<FormatException>(() => DeviceRuleSet.FromList("c 1:3\n"));
    }

    [Fact]
    public void V1_writes_from_a_new_cgroup_reset_it_to_deny_all_first()
    {
        var target = DeviceRuleSet.FromSpec([Deny("a"), Allow("c", 1, 3), Allow("b", 7, null, "r")]);
        var writes = target.TransitionFrom(DeviceRuleSet.FromList("a *:* rwm\n"));
        Assert.Equal(["devices.deny a *:* rwm", "devices.allow c 1:3 rwm", "devices.allow b 7:* r"],
            writes.Select(w => $"{w.File} {w}"));
    }

    [Fact]
    public void V1_update_writes_only_the_difference_so_no_allowed_device_goes_away_for_a_moment()
    {
        var current = DeviceRuleSet.FromList("c 1:3 rwm\nc 1:5 rwm\nc 1:9 rw\n");
        var target = DeviceRuleSet.FromSpec([Deny("a"), Allow("c", 1, 3), Allow("c", 1, 9, "r"), Allow("b", 7, 0, "r")]);
        var writes = target.TransitionFrom(current);
        Assert.Equal(["devices.deny c 1:5 rwm", "devices.deny c 1:9 w", "devices.allow b 7:0 r"], writes.Select(w => $"{w.File} {w}"));
        // Applying them to the current state gives the target.
        foreach (var w in writes)
        {
            current.Apply(w);
        }
        Assert.True(current.SameAs(target));
        Assert.Empty(target.TransitionFrom(current));
    }

    [Fact]
    public void V1_blacklist_target_resets_to_allow_all_and_then_denies()
    {
        var target = DeviceRuleSet.FromSpec([Allow("a"), Deny("b", 254, 0)]);
        Assert.Equal(["devices.allow a *:* rwm", "devices.deny b 254:0 rwm"],
            target.TransitionFrom(DeviceRuleSet.FromList("a *:* rwm\n")).Select(w => $"{w.File} {w}"));
    }

    public static TheoryData<string> RuleSets => new()
    {
        "defaults",
        "nothing",
        "everything",
        "partial",
        "blacklist",
        "wildcards",
        "big numbers",
    };

    private static LinuxDeviceCgroup[] Rules(string name) => name switch
    {
        "defaults" => ContainerdDefaults,
        "nothing" => [Deny("a")],
        "everything" => [Allow("a")],
        "partial" => [Deny("a"), Allow("c", 1, 3, "r"), Allow("c", 1, 5, "rw"), Allow("b", 7, 1, "m"), Allow("c", 4, null, "w")],
        "blacklist" => [Allow("a"), Deny("b", 7, 1, "w"), Deny("c", 1, 1), Deny("c", 10, null, "rm")],
        "wildcards" => [Deny("a"), Allow("c", null, null, "m"), Allow("b", null, 1, "r"), Allow("c", 136, null, "rw")],
        "big numbers" => [Deny("a"), Allow("c", 4294967295, 2147483648, "r"), Allow("b", 2147483647, null, "rw")],
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(RuleSets))]
    public void V2_program_decides_every_request_as_the_v1_kernel_does(string name)
    {
        var set = DeviceRuleSet.FromSpec(Rules(name));
        var program = DeviceFilterProgram.Build(set);
        Assert.Equal(0, program.Length % DeviceFilterProgram.InstructionSize);
        long[] numbers = [0, 1, 3, 4, 5, 7, 10, 136, 200, 254, 2147483647, 2147483648, 4294967295];
        var checkedCount = 0;
        foreach (var type in (char[])['b', 'c'])
        {
            foreach (var major in numbers)
            {
                foreach (var minor in numbers)
                {
                    for (var access = 1; access <= 7; access++)
                    {
                        var expected = KernelV1Allows(set, type, major, minor, (DeviceAccess)access);
                        var actual = BpfInterpreter.Run(program, type == 'b' ? 1 : 2, access, (uint)major, (uint)minor);
                        Assert.True(expected == (actual == 1),
                            $"{name}: {type} {major}:{minor} {DeviceRule.Letters((DeviceAccess)access)}: v1 {(expected ? "allows" : "denies")}, the program returned {actual}");
                        checkedCount++;
                    }
                }
            }
        }
        Assert.Equal(2 * numbers.Length * numbers.Length * 7, checkedCount);
    }

    [Fact]
    public void V2_program_for_deny_all_is_a_constant_deny_and_each_exception_a_block()
    {
        var none = DeviceFilterProgram.Build(DeviceRuleSet.FromSpec([Deny("a")]));
        Assert.Equal(0, BpfInterpreter.Run(none, 2, 2, 1, 3));
        // Six loads of the context, two instructions to end; c 1:3 rwm tests type, major and minor, then returns.
        Assert.Equal(8, none.Length / DeviceFilterProgram.InstructionSize);
        var one = DeviceFilterProgram.Build(DeviceRuleSet.FromSpec([Deny("a"), Allow("c", 1, 3)]));
        Assert.Equal(8 + 5, one.Length / DeviceFilterProgram.InstructionSize);
    }

    /// <summary>The v1 kernel's decision (security/device_cgroup.c): in whitelist mode an exception must match the
    /// device and include every access asked for; in blacklist mode any exception that matches and shares an access
    /// denies.</summary>
    private static bool KernelV1Allows(DeviceRuleSet set, char type, long major, long minor, DeviceAccess access)
    {
        var matching = set.Exceptions.Where(e => e.Key.Type == type
            && (e.Key.Major == DeviceMatch.Any || e.Key.Major == major)
            && (e.Key.Minor == DeviceMatch.Any || e.Key.Minor == minor)).Select(e => e.Value);
        return set.DefaultAllow
            ? !matching.Any(a => (a & access) != 0)
            : matching.Any(a => (access & ~a) == 0);
    }

    /// <summary>Runs a cgroup device program on one request: just the instructions <see cref="DeviceFilterProgram"/>
    /// emits, with the kernel's meaning (ALU32 results zero-extended, JMP32 comparing low halves).</summary>
    private static class BpfInterpreter
    {
        public static long Run(byte[] program, int type, int access, uint major, uint minor)
        {
            var ctx = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(ctx, (uint)((access << 16) | type));
            BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(4), major);
            BinaryPrimitives.WriteUInt32LittleEndian(ctx.AsSpan(8), minor);
            var r = new ulong[11];
            var initialised = new bool[11];
            initialised[1] = true;
            var count = program.Length / 8;
            for (var pc = 0; pc < count; pc++)
            {
                var i = program.AsSpan(pc * 8, 8);
                int dst = i[1] & 0xf, src = i[1] >> 4;
                var off = BinaryPrimitives.ReadInt16LittleEndian(i[2..]);
                var imm = BinaryPrimitives.ReadInt32LittleEndian(i[4..]);
                switch (i[0])
                {
                    case 0x61:
                        Assert.Equal(1, src);
                        r[dst] = BinaryPrimitives.ReadUInt32LittleEndian(ctx.AsSpan(off));
                        break;
                    case 0xb4:
                        r[dst] = (uint)imm;
                        break;
                    case 0xbc:
                        Assert.True(initialised[src], $"r{src} read before it was set, at {pc}");
                        r[dst] = (uint)r[src];
                        break;
                    case 0x54:
                        r[dst] = (uint)r[dst] & (uint)imm;
                        break;
                    case 0x74:
                        r[dst] = (uint)r[dst] >> imm;
                        break;
                    case 0x56 or 0x16:
                        Assert.True(initialised[dst], $"r{dst} compared before it was set, at {pc}");
                        if (((uint)r[dst] != (uint)imm) == (i[0] == 0x56))
                        {
                            pc += off;
                            Assert.InRange(pc + 1, 0, count - 1);
                        }
                        continue;
                    case 0x95:
                        Assert.True(initialised[0], "exit without a verdict in r0");
                        return (long)r[0];
                    default:
                        throw new InvalidOperationException($"opcode 0x{i[0]:x2} at {pc} is not one the generator emits");
                }
                initialised[dst] = true;
            }
            throw new InvalidOperationException("the program ran off its end");
        }
    }
}
