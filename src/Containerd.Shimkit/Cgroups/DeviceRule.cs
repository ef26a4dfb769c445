using System.Globalization;
using System.Text;

namespace Containerd.Shimkit.Cgroups;

/// <summary>The kinds of device access a rule covers. The values are the kernel's BPF_DEVCG_ACC_* bits, which is
/// also the order of v1's <c>r</c>, <c>w</c>, <c>m</c> letters read backwards.</summary>
[Flags]
internal enum DeviceAccess
{
    None = 0,
    Mknod = 1,
    Read = 2,
    Write = 4,
    All = Mknod | Read | Write,
}

/// <summary>Which devices a rule is about: a character (<c>c</c>) or block (<c>b</c>) device, with a major and minor
/// number each of which may be <see cref="Any"/>.</summary>
internal readonly record struct DeviceMatch(char Type, long Major, long Minor) : IComparable<DeviceMatch>
{
    /// <summary>A major or minor number that matches every number (v1's <c>*</c>).</summary>
    public const long Any = -1;

    /// <summary>The v1 form, e.g. <c>c 1:3</c> or <c>b *:*</c>.</summary>
    public override string ToString() => $"{Type} {Number(Major)}:{Number(Minor)}";

    /// <summary>Orders by major, minor, then type, so every rule list is written in the same order.</summary>
    public int CompareTo(DeviceMatch other) =>
        Major != other.Major ? Major.CompareTo(other.Major)
        : Minor != other.Minor ? Minor.CompareTo(other.Minor)
        : Type.CompareTo(other.Type);

    private static string Number(long n) => n == Any ? "*" : n.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One line for a v1 <c>devices.allow</c> or <c>devices.deny</c> file; a null <see cref="Match"/> is the
/// <c>a</c> rule, every device with every access, which resets the cgroup to deny-all (deny) or allow-all (allow).</summary>
internal readonly record struct DeviceRule(bool Allow, DeviceMatch? Match, DeviceAccess Access)
{
    /// <summary>The file the rule is written to.</summary>
    public string File => Allow ? "devices.allow" : "devices.deny";

    /// <summary>What is written, e.g. <c>c 1:3 rwm</c> or <c>a *:* rwm</c>.</summary>
    public override string ToString() => $"{(Match is { } m ? m.ToString() : "a *:*")} {Letters(Match is null ? DeviceAccess.All : Access)}";

    /// <summary>v1's letters for <paramref name="access"/>, in r, w, m order.</summary>
    public static string Letters(DeviceAccess access)
    {
        var s = new StringBuilder(3);
        if (access.HasFlag(DeviceAccess.Read))
        {
            s.Append('r');
        }
        if (access.HasFlag(DeviceAccess.Write))
        {
            s.Append('w');
        }
        if (access.HasFlag(DeviceAccess.Mknod))
        {
            s.Append('m');
        }
        return s.ToString();
    }
}
