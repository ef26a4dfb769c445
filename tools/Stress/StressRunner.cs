using System.Diagnostics;
using Containerd.Api.Client;
using Grpc.Core;

namespace Stress;

/// <summary>Runs <see cref="StressOptions.Count"/> tasks through containerd with bounded parallelism.</summary>
public static class StressRunner
{
    private static readonly TimeSpan ReachPatience = TimeSpan.FromSeconds(5);

    /// <summary>Checks containerd and the image, then runs every task and returns the report.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="completed">Called once per finished task (from any thread).</param>
    /// <param name="cancellationToken">Stops starting tasks and interrupts running ones; their resources are still removed.</param>
    /// <exception cref="StressException">containerd is unreachable or the image is unusable.</exception>
    public static async Task<StressReport> RunAsync(StressOptions options, Action<TaskOutcome> completed, CancellationToken cancellationToken)
    {
        using var client = new ContainerdClient(options.Address, options.Namespace);
        await EnsureReachableAsync(client, options.Address, cancellationToken);
        var image = await ImageInfo.LoadAsync(client, options.Image, options.Snapshotter, cancellationToken);
        var cycle = new ContainerdTaskCycle(client, options, image);

        var outcomes = new TaskOutcome[options.Count];
        var next = -1;
        var workers = options.Parallel <= 0 ? options.Count : Math.Min(options.Parallel, options.Count);
        var clock = Stopwatch.StartNew();
        // A fixed set of workers pulling indexes keeps exactly `workers` tasks in flight without a semaphore.
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < options.Count)
            {
                var id = $"{options.IdPrefix}-{i}";
                outcomes[i] = cancellationToken.IsCancellationRequested
                    ? new TaskOutcome(id, new Dictionary<Phase, TimeSpan>(), null, "not started: interrupted")
                    : await cycle.RunAsync(id, cancellationToken);
                completed(outcomes[i]);
            }
        }, CancellationToken.None)));
        return new StressReport(options, outcomes, clock.Elapsed);
    }

    private static async Task EnsureReachableAsync(ContainerdClient client, string address, CancellationToken cancellationToken)
    {
        if (!File.Exists(address))
        {
            throw new StressException($"containerd is not reachable: no socket at {address} (is containerd running? pass --address)");
        }
        try
        {
            await client.Version.VersionAsync(new(), deadline: DateTime.UtcNow + ReachPatience, cancellationToken: cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            throw new StressException($"containerd is not reachable at {address}: {e.StatusCode} {e.Status.Detail}", e);
        }
    }
}
