using System.Globalization;
using System.Text.Json;

namespace Charts;

/// <summary>One entry of a benchmark-action JSON file: what the stress tool and the bench scripts write.</summary>
public sealed record BenchResult(string Name, string Unit, double Value, string Extra)
{
    /// <summary>The comma-separated numbers of the <c>samples=</c> word in <see cref="Extra"/>, or empty.</summary>
    public IReadOnlyList<double> Samples =>
        Extra.Split(' ').FirstOrDefault(w => w.StartsWith("samples=", StringComparison.Ordinal)) is { } word
            ? word["samples=".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToList()
            : [];

    /// <summary>Reads every entry of one file; a file that is not such an array is an error naming the file.</summary>
    public static IReadOnlyList<BenchResult> Load(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.EnumerateArray().Select(e => new BenchResult(
                e.GetProperty("name").GetString() ?? "",
                e.GetProperty("unit").GetString() ?? "",
                e.GetProperty("value").GetDouble(),
                e.TryGetProperty("extra", out var extra) ? extra.GetString() ?? "" : "")).ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a benchmark-action JSON array of {{name, unit, value, extra}}: {e.Message}", e);
        }
    }
}
