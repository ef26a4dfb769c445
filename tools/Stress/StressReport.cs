using System.Globalization;
using System.Text.Json.Nodes;

namespace Stress;

/// <summary>The result of a run: throughput, failures and per-phase latency percentiles.</summary>
public sealed class StressReport
{
    /// <summary>The percentiles reported for each phase.</summary>
    public static readonly int[] ReportedPercentiles = [50, 90, 99];

    /// <summary>Summarises <paramref name="outcomes"/> of a run that took <paramref name="elapsed"/>.</summary>
    public StressReport(StressOptions options, IReadOnlyList<TaskOutcome> outcomes, TimeSpan elapsed)
    {
        Options = options;
        Outcomes = outcomes;
        Elapsed = elapsed;
        foreach (var phase in Enum.GetValues<Phase>())
        {
            var sorted = outcomes.Where(o => o.Succeeded && o.Durations.ContainsKey(phase)).Select(o => o.Durations[phase]).Order().ToList();
            PhasePercentiles[phase] = ReportedPercentiles.ToDictionary(p => p, p => Percentiles.Of(sorted, p));
        }
    }

    /// <summary>The options the run used.</summary>
    public StressOptions Options { get; }

    /// <summary>Every task's outcome.</summary>
    public IReadOnlyList<TaskOutcome> Outcomes { get; }

    /// <summary>Wall-clock time from the first create to the last delete.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Tasks that exited 0 and were cleaned up.</summary>
    public int Succeeded => Outcomes.Count(o => o.Succeeded);

    /// <summary>Tasks that did not.</summary>
    public int Failed => Outcomes.Count - Succeeded;

    /// <summary>Successful tasks per second of wall-clock time.</summary>
    public double TasksPerSecond => Elapsed > TimeSpan.Zero ? Succeeded / Elapsed.TotalSeconds : 0;

    /// <summary>Latency percentiles of successful tasks, per phase.</summary>
    public Dictionary<Phase, Dictionary<int, TimeSpan>> PhasePercentiles { get; } = [];

    /// <summary>Shim mode: events the shims forwarded to the mock endpoint; null in containerd mode.</summary>
    public int? EventsReceived { get; set; }

    /// <summary>The benchmark name prefix: the option, or "stress containerd &lt;runtime&gt;" / "stress shim &lt;binary&gt;".</summary>
    public string BenchmarkName => Options.BenchmarkName
        ?? (Options.Mode == StressMode.Shim ? $"stress shim {Path.GetFileName(Options.ShimPath)}" : $"stress containerd {Options.Runtime}");

    /// <summary>Writes the human-readable summary.</summary>
    public void WriteText(TextWriter writer)
    {
        var c = CultureInfo.InvariantCulture;
        writer.WriteLine(string.Create(c, $"{Outcomes.Count} tasks ({Succeeded} ok, {Failed} failed) in {Elapsed.TotalSeconds:0.000} s: {TasksPerSecond:0.0} tasks/s"));
        if (EventsReceived is { } events)
        {
            writer.WriteLine($"events forwarded to the mock endpoint: {events}");
        }
        writer.WriteLine("phase     p50 ms    p90 ms    p99 ms");
        foreach (var (phase, values) in PhasePercentiles)
        {
            writer.WriteLine(string.Create(c, $"{phase.ToString().ToLowerInvariant(),-8}{values[50].TotalMilliseconds,8:0.0}  {values[90].TotalMilliseconds,8:0.0}  {values[99].TotalMilliseconds,8:0.0}"));
        }
        foreach (var failure in Outcomes.Where(o => !o.Succeeded).Take(10))
        {
            writer.WriteLine($"failed {failure.Id}: {failure.Error}");
        }
    }

    /// <summary>
    /// The results in the format github-action-benchmark's customSmallerIsBetter/customBiggerIsBetter read:
    /// an array of {name, unit, value, extra}.
    /// </summary>
    public JsonArray ToBenchmarkJson()
    {
        var extra = string.Create(CultureInfo.InvariantCulture,
            $"count={Outcomes.Count} parallel={Options.Parallel} ok={Succeeded} failed={Failed} image={Options.Image}");
        var entries = new JsonArray
        {
            Entry("tasks/s", "tasks/s", TasksPerSecond, extra),
            Entry("elapsed", "s", Elapsed.TotalSeconds, extra),
        };
        foreach (var (phase, values) in PhasePercentiles)
        {
            foreach (var (p, value) in values)
            {
                entries.Add(Entry($"{phase.ToString().ToLowerInvariant()} p{p}", "ms", value.TotalMilliseconds, extra));
            }
        }
        return entries;
    }

    private JsonObject Entry(string name, string unit, double value, string extra) => new()
    {
        ["name"] = $"{BenchmarkName} {name}",
        ["unit"] = unit,
        ["value"] = Math.Round(value, 3),
        ["extra"] = extra,
    };
}
