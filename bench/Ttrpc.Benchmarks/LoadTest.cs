using System.Diagnostics;
using Ttrpc.Benchmarks.Ping;

namespace Ttrpc.Benchmarks;

/// <summary>
/// A fixed-duration load run that records every call's latency, for round trips per second and
/// latency percentiles (BenchmarkDotNet's percentiles are over iterations, not calls).
/// </summary>
public static class LoadTest
{
    /// <summary>Runs one load case and prints a markdown table row.</summary>
    public static async Task<string> RunAsync(int connections, int inFlight, TimeSpan duration, bool inlineHandlers = false)
    {
        await using PingHost host = await PingHost.StartAsync(connections, inlineHandlers);
        var request = new PingRequest { Id = "load", Sequence = 1 };

        // Warm up the JIT and the connections.
        await Lanes(host, connections, inFlight, TimeSpan.FromSeconds(1), request);
        GC.Collect();
        long gcBefore = GC.CollectionCount(0);
        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        List<long>[] latencies = await Lanes(host, connections, inFlight, duration, request);
        watch.Stop();
        TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        long[] all = [.. latencies.SelectMany(l => l).Order()];
        double perSecond = all.Length / watch.Elapsed.TotalSeconds;
        // Client and server share this process, so CPU time per call is the whole cost of a round
        // trip; dividing the cores by it projects the rate on an otherwise idle machine.
        double cpuMicros = cpu.TotalMicroseconds / all.Length;
        double projected = Environment.ProcessorCount * 1e6 / cpuMicros;
        double Percentile(double p) => all[Math.Min(all.Length - 1, (int)(p * all.Length))] * 1e6 / Stopwatch.Frequency;
        return $"| {connections} | {inFlight} | {(inlineHandlers ? "inline" : "thread pool")} | {perSecond:N0} | {cpuMicros:F1} | {projected:N0} | {Percentile(0.50):F0} | {Percentile(0.90):F0} | {Percentile(0.99):F0} | {Percentile(0.999):F0} | {allocated / (double)all.Length:N0} | {GC.CollectionCount(0) - gcBefore} |";
    }

    private static async Task<List<long>[]> Lanes(PingHost host, int connections, int inFlight, TimeSpan duration, PingRequest request)
    {
        long end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var lanes = new Task<List<long>>[connections * inFlight];
        for (int i = 0; i < lanes.Length; i++)
        {
            Pinger.PingerClient client = host.Clients[i % connections];
            lanes[i] = Task.Run(async () =>
            {
                var samples = new List<long>(1 << 16);
                while (Stopwatch.GetTimestamp() < end)
                {
                    long start = Stopwatch.GetTimestamp();
                    await client.PingAsync(request);
                    samples.Add(Stopwatch.GetTimestamp() - start);
                }

                return samples;
            });
        }

        return await Task.WhenAll(lanes);
    }
}
