using System.Globalization;
using Containerd.Shimkit.Oci;
using Grpc.Core;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// What a device cgroup lets through: a default (every device allowed, or none) and exceptions to it, each a device
/// match with the accesses it covers. Built from the spec's <c>linux.resources.devices</c> applied in order from
/// deny-all, as runc applies them (so a list that begins with a deny-all rule is a whitelist of the allow rules
/// after it), or read back from a v1 <c>devices.list</c>. v1 gets the writes that move its cgroup from the state it
/// is in to this one (<see cref="TransitionFrom"/>), v2 a BPF program (<see cref="DeviceFilterProgram"/>).
/// </summary>
internal sealed class DeviceRuleSet
{
    private readonly SortedDictionary<DeviceMatch, DeviceAccess> _exceptions = [];

    /// <summary>Whether a device no exception matches is allowed (v1's blacklist mode) or denied (whitelist).</summary>
    public bool DefaultAllow { get; private set; }

    /// <summary>The exceptions to the default, in major, minor, type order: denials when <see cref="DefaultAllow"/>,
    /// allowances otherwise.</summary>
    public IReadOnlyDictionary<DeviceMatch, DeviceAccess> Exceptions => _exceptions;

    /// <summary>The state the spec's rules describe, starting from deny-all.</summary>
    /// <exception cref="ShimException">InvalidArgument naming the rule and what is wrong with it.</exception>
    public static DeviceRuleSet FromSpec(IReadOnlyList<LinuxDeviceCgroup> rules)
    {
        var set = new DeviceRuleSet();
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = Translate(rules[i], i);
            if (set.Apply(rule) is { } conflict)
            {
                throw new ShimException(StatusCode.InvalidArgument,
                    $"linux.resources.devices[{i}]: {(rule.Allow ? "allowing" : "denying")} {rule} cannot be expressed while " +
                    $"{conflict} is {(rule.Allow ? "denied" : "allowed")}: a device cgroup cannot punch a hole in a wildcard rule");
            }
        }
        return set;
    }

    /// <summary>The state a v1 cgroup reports in <c>devices.list</c>. A cgroup in blacklist mode lists only
    /// <c>a *:* rwm</c>, whatever it denies: it reads as allow-all with no known exception.</summary>
    /// <exception cref="FormatException">A line that is not <c>type major:minor access</c>.</exception>
    public static DeviceRuleSet FromList(string devicesList)
    {
        var set = new DeviceRuleSet();
        foreach (var line in devicesList.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split([' ', ':']);
            if (fields.Length != 4 || fields[0] is not ("a" or "b" or "c"))
            {
                throw new FormatException($"devices.list line \"{line}\" is not \"type major:minor access\"");
            }
            if (fields[0] == "a")
            {
                set.Apply(new DeviceRule(true, null, DeviceAccess.All));
                continue;
            }
            var access = ParseAccess(fields[3]) ?? throw new FormatException($"devices.list line \"{line}\" has an unknown access");
            set.Apply(new DeviceRule(true, new DeviceMatch(fields[0][0], ParseNumber(fields[1], line), ParseNumber(fields[2], line)), access));
        }
        return set;
    }

    /// <summary>
    /// Applies one rule as the v1 kernel would: an <c>a</c> rule resets the default and drops every exception; a rule
    /// against the default adds an exception (or widens one); a rule with the default's verdict narrows one. Returns
    /// the wildcard exception in the way when a narrowing would have to punch a hole in it (the kernel silently
    /// ignores such a rule; this refuses it), else null.
    /// </summary>
    public DeviceRule? Apply(DeviceRule rule)
    {
        if (rule.Match is not { } match)
        {
            DefaultAllow = rule.Allow;
            _exceptions.Clear();
            return null;
        }
        if (rule.Allow != DefaultAllow)
        {
            _exceptions[match] = _exceptions.GetValueOrDefault(match) | rule.Access;
            return null;
        }
        foreach (var wider in (DeviceMatch[])[match with { Major = DeviceMatch.Any }, match with { Minor = DeviceMatch.Any },
            match with { Major = DeviceMatch.Any, Minor = DeviceMatch.Any }])
        {
            if (wider != match && (_exceptions.GetValueOrDefault(wider) & rule.Access) != 0)
            {
                return new DeviceRule(!DefaultAllow, wider, _exceptions[wider]);
            }
        }
        var left = _exceptions.GetValueOrDefault(match) & ~rule.Access;
        if (left == DeviceAccess.None)
        {
            _exceptions.Remove(match);
        }
        else
        {
            _exceptions[match] = left;
        }
        return null;
    }

    /// <summary>
    /// The v1 writes that take a cgroup in state <paramref name="current"/> to this state, changing nothing that is
    /// already right, so that an update does not take a device away from a running container for a moment. A reset
    /// comes first when the default changes, or when the cgroup is in blacklist mode (its denials cannot be read).
    /// </summary>
    public List<DeviceRule> TransitionFrom(DeviceRuleSet current)
    {
        var writes = new List<DeviceRule>();
        IReadOnlyDictionary<DeviceMatch, DeviceAccess> old = current._exceptions;
        if (current.DefaultAllow || current.DefaultAllow != DefaultAllow)
        {
            writes.Add(new DeviceRule(DefaultAllow, null, DeviceAccess.All));
            old = new Dictionary<DeviceMatch, DeviceAccess>();
        }
        foreach (var (match, had) in old)
        {
            var dropped = had & ~_exceptions.GetValueOrDefault(match);
            if (dropped != DeviceAccess.None)
            {
                writes.Add(new DeviceRule(DefaultAllow, match, dropped));
            }
        }
        foreach (var (match, wanted) in _exceptions)
        {
            var gained = wanted & ~old.GetValueOrDefault(match);
            if (gained != DeviceAccess.None)
            {
                writes.Add(new DeviceRule(!DefaultAllow, match, gained));
            }
        }
        return writes;
    }

    /// <summary>Whether <paramref name="other"/> has the same default and exceptions.</summary>
    public bool SameAs(DeviceRuleSet other) =>
        DefaultAllow == other.DefaultAllow && _exceptions.Count == other._exceptions.Count
        && _exceptions.All(e => other._exceptions.TryGetValue(e.Key, out var a) && a == e.Value);

    /// <summary>The state in v1's <c>devices.list</c> form, for messages.</summary>
    public override string ToString() => DefaultAllow
        ? "a *:* rwm" + string.Concat(_exceptions.Select(e => $", except {e.Key} {DeviceRule.Letters(e.Value)}"))
        : _exceptions.Count == 0 ? "nothing" : string.Join(", ", _exceptions.Select(e => $"{e.Key} {DeviceRule.Letters(e.Value)}"));

    private static DeviceRule Translate(LinuxDeviceCgroup rule, int index)
    {
        var access = ParseAccess(rule.Access ?? "") ?? throw new ShimException(StatusCode.InvalidArgument,
            $"linux.resources.devices[{index}]: access \"{rule.Access}\" is not a combination of r, w and m");
        switch (rule.Type)
        {
            case null or "" or "a":
                return new DeviceRule(rule.Allow, null, DeviceAccess.All);
            case "b" or "c":
                return new DeviceRule(rule.Allow,
                    new DeviceMatch(rule.Type[0], Number(rule.Major, "major", index), Number(rule.Minor, "minor", index)), access);
            default:
                throw new ShimException(StatusCode.InvalidArgument,
                    $"linux.resources.devices[{index}]: type \"{rule.Type}\" is not a (all), b (block) or c (character)");
        }
    }

    // Go's omitempty drops an empty access, so absent, null and "" all mean every access.
    private static DeviceAccess? ParseAccess(string letters)
    {
        if (letters.Length == 0)
        {
            return DeviceAccess.All;
        }
        var access = DeviceAccess.None;
        foreach (var c in letters)
        {
            access |= c switch
            {
                'r' => DeviceAccess.Read,
                'w' => DeviceAccess.Write,
                'm' => DeviceAccess.Mknod,
                _ => (DeviceAccess)(-1),
            };
        }
        return access is < 0 or > DeviceAccess.All ? null : access;
    }

    // The spec leaves a number out (or, from some generators, sets it to -1) for "any".
    private static long Number(long? n, string what, int index) => n switch
    {
        null or < 0 => DeviceMatch.Any,
        > uint.MaxValue => throw new ShimException(StatusCode.InvalidArgument,
            $"linux.resources.devices[{index}]: {what} {n} is larger than a device number can be"),
        { } v => v,
    };

    private static long ParseNumber(string s, string line) =>
        s == "*" ? DeviceMatch.Any
        : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : throw new FormatException($"devices.list line \"{line}\" has a bad device number \"{s}\"");
}
