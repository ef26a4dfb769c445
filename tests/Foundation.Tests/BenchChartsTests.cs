using System.Buffers.Binary;
using Charts;
using Xunit;

namespace Foundation.Tests;

/// <summary>
/// The benchmark chart tool (bench/Charts) draws one PNG per benchmark from results in the format the bench scripts and
/// the stress tool write; CI checks it runs, never what the numbers are.
/// </summary>
public sealed class BenchChartsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("bench-charts-");

    [Fact]
    public void EveryBenchmarkWithResultsGetsAPngOfTheChartSize()
    {
        var results = Directory.CreateDirectory(Path.Combine(_dir.FullName, "results")).FullName;
        File.WriteAllText(Path.Combine(results, "floors.json"), """
            [{"name": "floor runc ctr run median", "unit": "ms", "value": 150, "extra": "cores=2 samples=140,150,160"},
             {"name": "floor instance process median", "unit": "ms", "value": 20, "extra": "cores=2 samples=18,20,22"}]
            """);
        File.WriteAllText(Path.Combine(results, "start-latency.json"), """
            [{"name": "start-latency wasm median", "unit": "ms", "value": 120, "extra": "samples=110,120,130"},
             {"name": "start-latency runc median", "unit": "ms", "value": 160, "extra": "samples=150,160,170"}]
            """);
        File.WriteAllText(Path.Combine(results, "churn-wasm-1.json"), """[{"name": "churn wasm tasks/s", "unit": "tasks/s", "value": 22.5, "extra": "count=10"}]""");
        File.WriteAllText(Path.Combine(results, "churn-runc-1.json"), """[{"name": "churn runc tasks/s", "unit": "tasks/s", "value": 15.5, "extra": "count=10"}]""");
        File.WriteAllText(Path.Combine(results, "density.json"), """
            [{"name": "density wasm shim pss per container", "unit": "MiB", "value": 4, "extra": ""},
             {"name": "density wasm task pss per container", "unit": "MiB", "value": 5, "extra": ""},
             {"name": "density runc shim pss per container", "unit": "MiB", "value": 3, "extra": ""},
             {"name": "density runc task pss per container", "unit": "MiB", "value": 0.3, "extra": ""}]
            """);
        var images = Path.Combine(_dir.FullName, "img");

        var written = ChartWriter.WriteAll(results, images);

        Assert.Equal(["floors.png", "start-latency.png", "churn.png", "density.png"], written.Select(Path.GetFileName));
        foreach (var path in written)
        {
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 1000, $"{path} is {bytes.Length} bytes");
            // PNG signature, then the IHDR chunk: width and height big-endian at offsets 16 and 20.
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            Assert.Equal(ChartWriter.Width, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
            Assert.Equal(ChartWriter.Height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        }
    }

    [Fact]
    public void AFileThatIsNotBenchmarkJsonIsAnErrorNamingIt()
    {
        var results = Directory.CreateDirectory(Path.Combine(_dir.FullName, "results")).FullName;
        var bad = Path.Combine(results, "density.json");
        File.WriteAllText(bad, """{"name": "not an array"}""");

        var error = Assert.Throws<InvalidDataException>(() => ChartWriter.WriteAll(results, Path.Combine(_dir.FullName, "img")));

        Assert.Contains(bad, error.Message);
    }

    [Fact]
    public void AMissingResultsFolderIsAnErrorNamingIt()
    {
        var missing = Path.Combine(_dir.FullName, "no-such-results");

        var error = Assert.Throws<DirectoryNotFoundException>(() => ChartWriter.WriteAll(missing, Path.Combine(_dir.FullName, "img")));

        Assert.Contains(missing, error.Message);
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
