using System.Globalization;
using ScottPlot;

namespace Charts;

/// <summary>Draws one PNG per benchmark from the result files in a folder; a benchmark without results is skipped.</summary>
public static class ChartWriter
{
    /// <summary>Width and height of every chart, in pixels.</summary>
    public const int Width = 900, Height = 500;

    private static readonly Color Wasm = Color.FromHex("#5A4FCF"), Runc = Color.FromHex("#E07B39"), Other = Color.FromHex("#7F8C8D"), Light = Color.FromHex("#B7B0F0");

    /// <summary>Writes floors.png, start-latency.png, churn.png and density.png (those with results) into
    /// <paramref name="outputDir"/>; returns the paths written.</summary>
    public static IReadOnlyList<string> WriteAll(string resultsDir, string outputDir)
    {
        if (!Directory.Exists(resultsDir))
        {
            throw new DirectoryNotFoundException($"results folder {resultsDir} does not exist (run the bench/ scripts first)");
        }
        Directory.CreateDirectory(outputDir);
        var written = new List<string>();
        void Write(string name, Plot? plot)
        {
            if (plot is not null)
            {
                var path = Path.Combine(outputDir, name);
                plot.SavePng(path, Width, Height);
                written.Add(path);
            }
        }
        IReadOnlyList<BenchResult> Read(string pattern) =>
            Directory.GetFiles(resultsDir, pattern).Order(StringComparer.Ordinal).SelectMany(BenchResult.Load).ToList();

        Write("floors.png", Floors(Read("floors.json")));
        Write("start-latency.png", StartLatency(Read("start-latency.json")));
        Write("churn.png", Churn(Read("churn-*.json")));
        Write("density.png", Density(Read("density.json")));
        return written;
    }

    /// <summary>Boxes (p25–p75, median line, whiskers p10–p90) of every "floor … median" entry's samples.</summary>
    public static Plot? Floors(IReadOnlyList<BenchResult> results)
    {
        var floors = results.Where(r => r.Name.StartsWith("floor ", StringComparison.Ordinal) && r.Name.EndsWith(" median", StringComparison.Ordinal)).ToList();
        if (floors.Count == 0)
        {
            return null;
        }
        var labels = floors.Select(f => f.Name["floor ".Length..^" median".Length]).ToList();
        var colors = labels.Select(l => l.StartsWith("runc", StringComparison.Ordinal) || l.StartsWith("static", StringComparison.Ordinal) ? Runc : Wasm).ToList();
        return Boxes("Floors: one no-op container or process, wall time (lower is better)", "ms",
            labels.Select(l => l.Replace(" ctr run", "\nctr run --rm", StringComparison.Ordinal).Replace(" process", "\nprocess", StringComparison.Ordinal)
                .Replace(" cpu", "\n(CPU time)", StringComparison.Ordinal)).ToList(),
            floors, colors, Extra(floors[0]));
    }

    /// <summary>Boxes of the wasm and runc `ctr run --rm` samples.</summary>
    public static Plot? StartLatency(IReadOnlyList<BenchResult> results)
    {
        var medians = results.Where(r => r.Name.EndsWith(" median", StringComparison.Ordinal) && r.Samples.Count > 0).ToList();
        if (medians.Count == 0)
        {
            return null;
        }
        var labels = medians.Select(m => m.Name.Replace("start-latency ", "", StringComparison.Ordinal).Replace(" median", "", StringComparison.Ordinal)).ToList();
        var titles = labels.Select(l => l switch
        {
            "wasm" => "wasm demo echo\n(wasmtime shim)",
            "oci" => "wasm-layer image echo\n(wasmtime shim)",
            "runc" => "busybox echo\n(runc)",
            _ => l,
        }).ToList();
        return Boxes("Start latency: ctr run --rm of an echo container (lower is better)", "ms", titles, medians,
            labels.Select(l => l.StartsWith("runc", StringComparison.Ordinal) ? Runc : Wasm).ToList(), Extra(medians[0]));
    }

    /// <summary>Bars of tasks/s per run: wasm and runc through containerd, the wasm shim alone against the mock.</summary>
    public static Plot? Churn(IReadOnlyList<BenchResult> results)
    {
        var rates = results.Where(r => r.Unit == "tasks/s").ToList();
        if (rates.Count == 0)
        {
            return null;
        }
        string[] groups = ["churn wasm", "churn runc", "churn mock"];
        string[] titles = ["wasm shim\nthrough containerd", "runc shim\nthrough containerd", "wasm shim alone\n(mock containerd)"];
        Color[] colors = [Wasm, Runc, Light];
        var plot = NewPlot("Churn: Create → Start → Wait → Delete, tasks/s (higher is better)", "tasks/s");
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (var g = 0; g < groups.Length; g++)
        {
            var runs = rates.Where(r => r.Name == $"{groups[g]} tasks/s").ToList();
            for (var i = 0; i < runs.Count; i++)
            {
                var position = g * 4 + i;
                bars.Add(new Bar { Position = position, Value = runs[i].Value, FillColor = colors[g], Label = runs[i].Value.ToString("0.0", CultureInfo.InvariantCulture) });
            }
            if (runs.Count > 0)
            {
                ticks.Add(new Tick(g * 4 + (runs.Count - 1) / 2.0, titles[g]));
            }
        }
        Finish(plot, bars, ticks, Extra(rates[0]) + "; one bar per interleaved round");
        return plot;
    }

    /// <summary>Stacked bars of PSS per container (shim + task) and, where measured, the memory cgroup's usage.</summary>
    public static Plot? Density(IReadOnlyList<BenchResult> results)
    {
        double? Find(string name) => results.FirstOrDefault(r => r.Name == name)?.Value;
        var plot = NewPlot("Density: memory each long-running container adds (lower is better)", "MiB per container");
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        var position = 0;
        foreach (var (kind, color, title) in new[] { ("wasm", Wasm, "wasm daemon"), ("runc", Runc, "runc busybox sleep") })
        {
            if (Find($"density {kind} shim pss per container") is not { } shim || Find($"density {kind} task pss per container") is not { } task)
            {
                continue;
            }
            bars.Add(new Bar { Position = position, Value = shim, FillColor = color });
            bars.Add(new Bar { Position = position, ValueBase = shim, Value = shim + task, FillColor = color.WithAlpha(0.55), Label = (Find($"density {kind} pss per container") ?? shim + task).ToString("0.00", CultureInfo.InvariantCulture) });
            ticks.Add(new Tick(position, $"{title}\nPSS: shim (dark) + task"));
            position++;
            if (Find($"density {kind} cgroup usage per container") is { } cgroup)
            {
                bars.Add(new Bar { Position = position, Value = cgroup, FillColor = Other, Label = cgroup.ToString("0.00", CultureInfo.InvariantCulture) });
                ticks.Add(new Tick(position, $"{title}\nmemory cgroup usage"));
                position++;
            }
            position++;
        }
        if (bars.Count == 0)
        {
            return null;
        }
        Finish(plot, bars, ticks, Extra(results[0]));
        return plot;
    }

    private static Plot Boxes(string title, string unit, IReadOnlyList<string> labels, IReadOnlyList<BenchResult> medians, IReadOnlyList<Color> colors, string note)
    {
        var plot = NewPlot(title, unit);
        var ticks = new List<Tick>();
        for (var i = 0; i < medians.Count; i++)
        {
            var samples = medians[i].Samples.Order().ToList();
            if (samples.Count == 0)
            {
                samples = [medians[i].Value];
            }
            var box = new Box
            {
                Position = i,
                BoxMin = Percentile(samples, 25),
                BoxMax = Percentile(samples, 75),
                BoxMiddle = medians[i].Value,
                WhiskerMin = Percentile(samples, 10),
                WhiskerMax = Percentile(samples, 90),
            };
            var boxPlot = plot.Add.Box(box);
            boxPlot.FillColor = colors[i].WithAlpha(0.6);
            var text = plot.Add.Text(medians[i].Value.ToString("0.#", CultureInfo.InvariantCulture) + " ms", i + 0.42, medians[i].Value);
            text.LabelFontSize = 13;
            text.LabelAlignment = Alignment.MiddleLeft;
            ticks.Add(new Tick(i, labels[i]));
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.SetLimitsX(-0.7, medians.Count - 0.3);
        plot.Axes.SetLimitsY(0, medians.Max(m => m.Samples.Count > 0 ? Percentile(m.Samples.Order().ToList(), 90) : m.Value) * 1.15);
        plot.XLabel(note + "; box p25–p75, line median, whiskers p10–p90", size: 11);
        return plot;
    }

    private static Plot NewPlot(string title, string unit)
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        plot.Title(title, size: 16);
        plot.YLabel(unit, size: 13);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 12;
        plot.Axes.Left.TickLabelStyle.FontSize = 12;
        return plot;
    }

    private static void Finish(Plot plot, List<Bar> bars, List<Tick> ticks, string note)
    {
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 13;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.XLabel(note, size: 11);
    }

    private static double Percentile(IReadOnlyList<double> sorted, int p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];

    // The machine note of a result (cores, load, containerd version, date), without the raw samples.
    private static string Extra(BenchResult result) =>
        string.Join(' ', result.Extra.Split(' ').Where(w => !w.StartsWith("samples=", StringComparison.Ordinal) && !w.StartsWith("image=", StringComparison.Ordinal)));
}
