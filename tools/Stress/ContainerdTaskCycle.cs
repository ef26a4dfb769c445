using System.Diagnostics;
using Containerd.Api.Client;
using Containerd.Services.Containers.V1;
using Containerd.Services.Snapshots.V1;
using Containerd.Services.Tasks.V1;
using Grpc.Core;

namespace Stress;

/// <summary>
/// One task through containerd's API, as ctr run --rm does it: container record, writable snapshot on the image's
/// chain, Tasks.Create with the snapshot's mounts, Start, Wait, Delete, then the container and snapshot go.
/// Whatever it created is removed even when the task fails, times out or the run is cancelled.
/// </summary>
public sealed class ContainerdTaskCycle(ContainerdClient client, StressOptions options, ImageInfo image) : ITaskCycle
{
    private static readonly TimeSpan CleanupPatience = TimeSpan.FromSeconds(30);

    /// <inheritdoc />
    public async Task<TaskOutcome> RunAsync(string id, CancellationToken cancellationToken)
    {
        var durations = new Dictionary<Phase, TimeSpan>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.Timeout);
        var token = deadline.Token;
        bool containerCreated = false, snapshotCreated = false, taskCreated = false;
        uint? exitStatus = null;
        string? error = null;
        var createFailed = false;
        var clock = Stopwatch.StartNew();
        try
        {
            var args = options.Args.Count > 0 ? options.Args : image.Args;
            var container = new Container
            {
                Id = id,
                Image = image.Name,
                Runtime = new Container.Types.Runtime { Name = options.Runtime },
                Spec = RuntimeSpecAny.Spec(DefaultSpec.Build(options.Namespace, id, args, image.Env, image.WorkingDir)),
                Snapshotter = options.Snapshotter,
                SnapshotKey = id,
            };
            // The container record goes first: it references the snapshot key, so containerd's garbage collector
            // keeps the snapshot from the moment it exists, without a lease.
            await client.Containers.CreateAsync(new CreateContainerRequest { Container = container }, cancellationToken: token);
            containerCreated = true;
            var prepared = await client.Snapshots.PrepareAsync(
                new PrepareSnapshotRequest { Snapshotter = options.Snapshotter, Key = id, Parent = image.ChainId }, cancellationToken: token);
            snapshotCreated = true;
            var create = new CreateTaskRequest { ContainerId = id };
            create.Rootfs.Add(prepared.Mounts);
            await client.Tasks.CreateAsync(create, cancellationToken: token);
            taskCreated = true;
            durations[Phase.Create] = Lap(clock);

            await client.Tasks.StartAsync(new StartRequest { ContainerId = id }, cancellationToken: token);
            durations[Phase.Start] = Lap(clock);

            var waited = await client.Tasks.WaitAsync(new WaitRequest { ContainerId = id }, cancellationToken: token);
            exitStatus = waited.ExitStatus;
            durations[Phase.Wait] = Lap(clock);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"timed out after {options.Timeout.TotalSeconds:0.#} s";
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && !cancellationToken.IsCancellationRequested)
        {
            error = $"timed out after {options.Timeout.TotalSeconds:0.#} s";
        }
        catch (OperationCanceledException)
        {
            error = "interrupted";
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            error = "interrupted";
        }
        catch (RpcException e)
        {
            error = $"{e.StatusCode}: {e.Status.Detail}";
            createFailed = !taskCreated;
        }

        clock.Restart();
        var cleanupError = await CleanupAsync(id, containerCreated, snapshotCreated, taskCreated, exitStatus is null);
        if (error is null)
        {
            durations[Phase.Delete] = clock.Elapsed;
            error = cleanupError;
        }
        if (error is null && exitStatus != 0)
        {
            error = $"exited with status {exitStatus}";
        }
        return new TaskOutcome(id, durations, exitStatus, error) { CreateFailed = createFailed };
    }

    // Runs on its own deadline, never the run's token: an interrupted run must still remove what it made.
    private async Task<string?> CleanupAsync(string id, bool container, bool snapshot, bool task, bool mayBeRunning)
    {
        using var patience = new CancellationTokenSource(CleanupPatience);
        var token = patience.Token;
        string? firstError = null;
        async Task Attempt(Func<Task> action)
        {
            try
            {
                await action();
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                firstError ??= $"cleanup: {(e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : "timed out")}";
            }
        }
        // A cancelled Tasks.Create may still have made the task, so a container alone is reason enough to look.
        if (task || container)
        {
            if (mayBeRunning)
            {
                await Attempt(async () =>
                {
                    await client.Tasks.KillAsync(new KillRequest { ContainerId = id, Signal = 9, All = true }, cancellationToken: token);
                    await client.Tasks.WaitAsync(new WaitRequest { ContainerId = id }, cancellationToken: token);
                });
            }
            await Attempt(async () => await client.Tasks.DeleteAsync(new DeleteTaskRequest { ContainerId = id }, cancellationToken: token));
        }
        if (container)
        {
            await Attempt(async () => await client.Containers.DeleteAsync(new DeleteContainerRequest { Id = id }, cancellationToken: token));
        }
        if (snapshot || container)
        {
            await Attempt(async () => await client.Snapshots.RemoveAsync(
                new RemoveSnapshotRequest { Snapshotter = options.Snapshotter, Key = id }, cancellationToken: token));
        }
        return firstError;
    }

    private static TimeSpan Lap(Stopwatch clock)
    {
        var elapsed = clock.Elapsed;
        clock.Restart();
        return elapsed;
    }
}
