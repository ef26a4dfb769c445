using Charts;

// bench-charts [results folder] [output folder]: one PNG per benchmark from the bench/ scripts' JSON results.
var results = args.Length > 0 ? args[0] : "out/bench-results";
var output = args.Length > 1 ? args[1] : "docs/img";
try
{
    var written = ChartWriter.WriteAll(results, output);
    foreach (var path in written)
    {
        Console.WriteLine(path);
    }
    if (written.Count == 0)
    {
        Console.Error.WriteLine($"bench-charts: no results in {results} (floors.json, start-latency.json, churn-*.json, density.json)");
        return 1;
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"bench-charts: {e.Message}");
    return 2;
}
