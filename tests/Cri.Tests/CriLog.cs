using System.Globalization;
using System.Text.RegularExpressions;

namespace Cri.Tests;

/// <summary>One line of a CRI container log: <c>&lt;RFC3339Nano time&gt; &lt;stdout|stderr&gt; &lt;F|P&gt; &lt;text&gt;</c>, what kubectl logs reads.</summary>
internal sealed partial record CriLogLine(DateTimeOffset Time, string Stream, string Tag, string Text)
{
    [GeneratedRegex(@"^(?<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)) (?<stream>stdout|stderr) (?<tag>[FP]) (?<text>.*)$")]
    private static partial Regex Format();

    /// <summary>Parses every line of a CRI log file, failing on any line not in the format.</summary>
    public static IReadOnlyList<CriLogLine> ReadAll(string path)
    {
        var lines = new List<CriLogLine>();
        foreach (var line in File.ReadAllLines(path))
        {
            var m = Format().Match(line);
            if (!m.Success)
            {
                throw new FormatException($"{path}: not a CRI log line: '{line}'");
            }
            // .NET parses at most 7 fractional digits; the nanoseconds beyond do not matter here.
            var time = Regex.Replace(m.Groups["time"].Value, @"(\.\d{7})\d+", "$1");
            lines.Add(new CriLogLine(
                DateTimeOffset.Parse(time, CultureInfo.InvariantCulture), m.Groups["stream"].Value, m.Groups["tag"].Value, m.Groups["text"].Value));
        }
        return lines;
    }
}
