using System.Text;

namespace NodeInstaller;

/// <summary>A minimal unified diff for the dry run: the installer only inserts or replaces one contiguous region per edit.</summary>
public static class TextDiff
{
    /// <summary>Lines common to both ends are context; what lies between is shown as removed and added lines.</summary>
    /// <param name="before">The original text.</param>
    /// <param name="after">The new text.</param>
    /// <param name="name">The file name for the headers.</param>
    /// <returns>A unified diff (empty when the texts are equal).</returns>
    public static string Unified(string before, string after, string name)
    {
        if (before == after)
        {
            return "";
        }
        var a = Lines(before);
        var b = Lines(after);
        var head = 0;
        while (head < a.Length && head < b.Length && a[head] == b[head])
        {
            head++;
        }
        var tail = 0;
        while (tail < a.Length - head && tail < b.Length - head && a[^(tail + 1)] == b[^(tail + 1)])
        {
            tail++;
        }
        const int context = 3;
        var from = Math.Max(0, head - context);
        var aEnd = Math.Min(a.Length, a.Length - tail + context);
        var bEnd = Math.Min(b.Length, b.Length - tail + context);
        var sb = new StringBuilder();
        sb.Append("--- ").Append(name).Append('\n');
        sb.Append("+++ ").Append(name).Append('\n');
        sb.Append($"@@ -{from + 1},{aEnd - from} +{from + 1},{bEnd - from} @@\n");
        for (var i = from; i < head; i++)
        {
            sb.Append(' ').Append(a[i]).Append('\n');
        }
        for (var i = head; i < a.Length - tail; i++)
        {
            sb.Append('-').Append(a[i]).Append('\n');
        }
        for (var i = head; i < b.Length - tail; i++)
        {
            sb.Append('+').Append(b[i]).Append('\n');
        }
        for (var i = a.Length - tail; i < aEnd; i++)
        {
            sb.Append(' ').Append(a[i]).Append('\n');
        }
        return sb.ToString();
    }

    private static string[] Lines(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        return text.EndsWith('\n') ? lines[..^1] : lines;
    }
}
