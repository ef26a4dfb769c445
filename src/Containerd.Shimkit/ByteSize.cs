using System.Globalization;

namespace Containerd.Shimkit;

/// <summary>Sizes in settings, as an operator writes them: bytes, or a number with <c>K</c>, <c>M</c> or <c>G</c>
/// (binary units).</summary>
public static class ByteSize
{
    /// <summary>Parses <c>1048576</c>, <c>64K</c>, <c>512M</c>, <c>2G</c>; null when it is none of these.</summary>
    public static long? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var shift = t.Length > 0 ? char.ToUpperInvariant(t[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 } : 0;
        if (shift > 0)
        {
            t = t[..^1];
        }
        return long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 0 && n <= (long.MaxValue >> shift)
            ? n << shift
            : null;
    }
}
