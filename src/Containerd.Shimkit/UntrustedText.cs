using System.Globalization;
using System.Text;

namespace Containerd.Shimkit;

/// <summary>
/// Makes text that came from a tenant (a module's source or names, an image's annotations, a spec's strings) safe to
/// put into an error message, which ends up on <c>ctr</c>'s terminal and in containerd's log: short, one line, and
/// with every control character, ANSI escape and other non-printable character written as an escape.
/// </summary>
public static class UntrustedText
{
    /// <summary>The length of an excerpt unless a caller asks for another.</summary>
    public const int ExcerptLength = 120;

    /// <summary>How many items of a list <see cref="List"/> shows.</summary>
    public const int ListItems = 10;

    /// <summary>
    /// <paramref name="text"/> with non-printable characters escaped (<c>\n</c>, <c>\t</c>, <c>\r</c>, <c>\e</c>,
    /// <c>\xNN</c>, <c>\u{NNNN}</c>) and cut to at most <paramref name="maxLength"/> characters of the escaped form,
    /// followed by <c>… (N characters)</c> when it was cut. A backslash is left as it is, so escaping twice changes
    /// nothing.
    /// </summary>
    public static string Excerpt(string? text, int maxLength = ExcerptLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        var result = new StringBuilder(Math.Min(text.Length, maxLength) + 24);
        var cut = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            string piece;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var codePoint = char.ConvertToUtf32(c, text[i + 1]);
                piece = IsPrintable(CharUnicodeInfo.GetUnicodeCategory(codePoint))
                    ? text.Substring(i, 2)
                    : $"\\u{{{codePoint:X}}}";
                i++;
            }
            else
            {
                piece = Escape(c);
            }
            if (result.Length + piece.Length > maxLength)
            {
                cut = true;
                break;
            }
            result.Append(piece);
        }
        if (cut)
        {
            result.Append("… (").Append(text.Length.ToString(CultureInfo.InvariantCulture)).Append(" characters)");
        }
        return result.ToString();
    }

    /// <summary>
    /// The first <see cref="ListItems"/> of <paramref name="items"/>, each an <see cref="Excerpt"/> of at most
    /// <paramref name="itemLength"/> characters, joined by <c>, </c>, with <c>and N more</c> for the rest;
    /// <c>none</c> for an empty list.
    /// </summary>
    public static string List(IReadOnlyCollection<string> items, int itemLength = 60)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0)
        {
            return "none";
        }
        var shown = string.Join(", ", items.Take(ListItems).Select(i => Excerpt(i, itemLength)));
        return items.Count > ListItems ? $"{shown} and {items.Count - ListItems} more" : shown;
    }

    private static string Escape(char c) => c switch
    {
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\x1b' => "\\e",
        < ' ' or '\x7f' => $"\\x{(int)c:x2}",
        _ when char.IsSurrogate(c) => $"\\u{{{(int)c:X}}}",
        _ when !IsPrintable(char.GetUnicodeCategory(c)) => c <= '\xff' ? $"\\x{(int)c:x2}" : $"\\u{{{(int)c:X}}}",
        _ => c.ToString(),
    };

    // Format characters (bidirectional overrides, zero-width joiners), separators other than a space, private-use and
    // unassigned code points can make a terminal show something other than what the text says.
    private static bool IsPrintable(UnicodeCategory category) => category is not (UnicodeCategory.Control
        or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned);
}
