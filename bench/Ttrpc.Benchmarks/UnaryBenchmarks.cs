using BenchmarkDotNet.Attributes;
using Ttrpc.Benchmarks.Ping;

namespace Ttrpc.Benchmarks;

/// <summary>
/// Small unary round trips through a real server over Unix sockets. Each operation is one
/// round trip; the concurrent cases keep <see cref="InFlight"/> calls outstanding per connection.
/// </summary>
[MemoryDiagnoser]
public class UnaryBenchmarks
{
    private const int CallsPerOperation = 256;
    private PingHost _host = null!;
    private readonly PingRequest _request = new() { Id = "bench", Sequence = 1 };

    /// <summary>Client connections.</summary>
    [Params(1, 8)]
    public int Connections { get; set; }

    /// <summary>Calls outstanding per connection.</summary>
    [Params(1, 32)]
    public int InFlight { get; set; }

    /// <summary>Starts the server and connects.</summary>
    [GlobalSetup]
    public void Setup() => _host = PingHost.StartAsync(Connections).GetAwaiter().GetResult();

    /// <summary>Disconnects and stops the server.</summary>
    [GlobalCleanup]
    public void Cleanup() => _host.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>256 round trips spread over the connections, <see cref="InFlight"/> at a time on each.</summary>
    [Benchmark(OperationsPerInvoke = CallsPerOperation)]
    public async Task RoundTrip()
    {
        int lanes = Connections * InFlight;
        int perLane = CallsPerOperation / lanes;
        var tasks = new Task[lanes];
        for (int lane = 0; lane < lanes; lane++)
        {
            tasks[lane] = RunLane(_host.Clients[lane % Connections], perLane);
        }

        await Task.WhenAll(tasks);
    }

    private async Task RunLane(Pinger.PingerClient client, int calls)
    {
        for (int i = 0; i < calls; i++)
        {
            await client.PingAsync(_request);
        }
    }
}
