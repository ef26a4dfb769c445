using System.Diagnostics;
using Containerd.Api.Client;
using Containerd.Services.Events.Ttrpc.V1;
using Grpc.Core;
using Ttrpc;

namespace Stress;

/// <summary>Runs <see cref="StressOptions.Count"/> tasks with bounded parallelism in the chosen mode.</summary>
public static class StressRunner
{
    private static readonly TimeSpan ReachPatience = TimeSpan.FromSeconds(5);

    /// <summary>Checks the target, then runs every task and returns the report.</summary>
    /// <param name="options">What to run.</param>
    /// <param name="completed">Called once per finished task (from any thread).</param>
    /// <param name="cancellationToken">Stops starting tasks and interrupts running ones; their resources are still removed.</param>
    /// <exception cref="StressException">The target is unreachable or unusable (containerd, image, shim, rootfs).</exception>
    public static Task<StressReport> RunAsync(StressOptions options, Action<TaskOutcome> completed, CancellationToken cancellationToken) =>
        options.Mode == StressMode.Shim
            ? RunAgainstShimAsync(options, completed, cancellationToken)
            : RunAgainstContainerdAsync(options, completed, cancellationToken);

    private static async Task<StressReport> RunAgainstContainerdAsync(StressOptions options, Action<TaskOutcome> completed, CancellationToken cancellationToken)
    {
        using var client = new ContainerdClient(options.Address, options.Namespace);
        await EnsureReachableAsync(client, options.Address, cancellationToken);
        var image = await ImageInfo.LoadAsync(client, options.Image, options.Snapshotter, cancellationToken);
        return await RunAllAsync(options, new ContainerdTaskCycle(client, options, image), completed, cancellationToken);
    }

    private static async Task<StressReport> RunAgainstShimAsync(StressOptions options, Action<TaskOutcome> completed, CancellationToken cancellationToken)
    {
        if (options.ShimPath is not { Length: > 0 } shim || !File.Exists(shim))
        {
            throw new StressException($"shim mode needs --shim <executable>; '{options.ShimPath}' does not exist");
        }
        if (options.Rootfs is not { Length: > 0 } rootfs || !Directory.Exists(rootfs))
        {
            throw new StressException($"shim mode needs --rootfs <folder holding the module>; '{options.Rootfs}' does not exist");
        }
        if (options.Args.Count == 0)
        {
            throw new StressException("shim mode needs the process arguments after --, e.g. -- /wasi-demo-app.wasm echo hi");
        }
        // Short, private and unique: the shim derives its socket from the fake address, and Unix socket paths are limited.
        var workDir = Directory.CreateTempSubdirectory("stress-").FullName;
        var counter = new EventCounter();
        try
        {
            var eventsSocket = Path.Combine(workDir, "events.sock");
            await using var server = new TtrpcServer();
            Events.BindService(server.Binder, counter);
            server.Listen(eventsSocket);
            await server.StartAsync(cancellationToken);
            var report = await RunAllAsync(options, new ShimTaskCycle(options, workDir, eventsSocket), completed, cancellationToken);
            report.EventsReceived = counter.Count;
            return report;
        }
        finally
        {
            try
            {
                Directory.Delete(workDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<StressReport> RunAllAsync(StressOptions options, ITaskCycle cycle, Action<TaskOutcome> completed, CancellationToken cancellationToken)
    {
        var outcomes = new TaskOutcome[options.Count];
        var next = -1;
        var anySucceeded = 0;
        TaskOutcome? unreachable = null;
        var workers = options.Parallel <= 0 ? options.Count : Math.Min(options.Parallel, options.Count);
        // Stops the run on an interrupt, or when the first task to finish could not even be created: then the shim is
        // missing or broken and every other task would fail the same way, each after its own timeout.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var clock = Stopwatch.StartNew();
        // A fixed set of workers pulling indexes keeps exactly `workers` tasks in flight without a semaphore.
        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < options.Count)
            {
                var id = $"{options.IdPrefix}-{i}";
                var outcome = stop.IsCancellationRequested
                    ? new TaskOutcome(id, new Dictionary<Phase, TimeSpan>(), null, unreachable is null ? "not started: interrupted" : "not started: no task could be created")
                    : await cycle.RunAsync(id, stop.Token);
                if (outcome.Succeeded)
                {
                    Volatile.Write(ref anySucceeded, 1);
                }
                else if (outcome.CreateFailed && Volatile.Read(ref anySucceeded) == 0 && Interlocked.CompareExchange(ref unreachable, outcome, null) is null)
                {
                    await stop.CancelAsync();
                }
                outcomes[i] = outcome;
                completed(outcome);
            }
        }, CancellationToken.None)));
        if (unreachable is not null && !cancellationToken.IsCancellationRequested)
        {
            // Every task started so far has been cleaned up by its own cycle.
            throw new StressException(options.Mode == StressMode.Shim
                ? $"the shim {options.ShimPath} could not create a task: {unreachable.Error}"
                : $"runtime {options.Runtime} could not create a task (is its shim installed on containerd's PATH, and does it accept the image and args?): {unreachable.Error}");
        }
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
