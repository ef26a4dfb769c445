using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Ttrpc.Benchmarks;

// "load [seconds]": latency percentiles and round trips/s per case.
// anything else: BenchmarkDotNet (in-process, so the repository's build settings apply unchanged).
if (args.Length > 0 && args[0] == "load")
{
    var duration = TimeSpan.FromSeconds(args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5);
    bool inline = args.Contains("inline");
    Console.WriteLine("| connections | in flight per connection | handlers | round trips/s | CPU µs per call | projected idle-machine round trips/s | p50 µs | p90 µs | p99 µs | p99.9 µs | bytes allocated per call | gen0 GCs |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
    foreach ((int connections, int inFlight) in new[] { (1, 1), (1, 32), (8, 1), (8, 32) })
    {
        Console.WriteLine(await LoadTest.RunAsync(connections, inFlight, duration, inline));
    }

    return;
}

var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(UnaryBenchmarks).Assembly).Run(args, config);
