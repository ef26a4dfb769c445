using System.Diagnostics;
using Containerd.Runtime.TaskV2;
using Grpc.Core;
using Ttrpc;
using TaskClient = Containerd.Runtime.TaskV2.Task.TaskClient;

namespace Stress;

/// <summary>
/// One task straight through a shim binary, as containerd drives it: a bundle folder with config.json,
/// <c>&lt;shim&gt; -namespace … -address … -id … start</c> in it, then the task API over the shim's ttrpc socket
/// (Create, Start, Wait, Delete, Shutdown). The root filesystem is a prepared folder the spec points at, so no
/// snapshot or mount is involved: what is measured is the shim alone.
/// </summary>
/// <param name="options">The run's options (shim path, rootfs, args, namespace, timeout).</param>
/// <param name="workDir">The run's private folder: bundles go below it, and the fake containerd address is in it.</param>
/// <param name="eventsAddress">The socket of the mock events endpoint, given to the shim as TTRPC_ADDRESS.</param>
public sealed class ShimTaskCycle(StressOptions options, string workDir, string eventsAddress) : ITaskCycle
{
    private static readonly TimeSpan CleanupPatience = TimeSpan.FromSeconds(30);

    private string FakeContainerdAddress => Path.Combine(workDir, "containerd.sock");

    /// <inheritdoc />
    public async Task<TaskOutcome> RunAsync(string id, CancellationToken cancellationToken)
    {
        var durations = new Dictionary<Phase, TimeSpan>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.Timeout);
        var token = deadline.Token;
        var bundle = Path.Combine(workDir, id);
        TtrpcChannel? channel = null;
        TaskClient? client = null;
        var created = false;
        uint? exitStatus = null;
        string? error = null;
        var clock = Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(bundle);
            var spec = DefaultSpec.Build(options.Namespace, id, options.Args, [], "/", rootPath: Path.GetFullPath(options.Rootfs!));
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), spec, token);
            var address = await StartShimAsync(id, bundle, token);
            channel = new TtrpcChannel(address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address);
            client = new TaskClient(channel.CreateCallInvoker());
            await client.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }, Headers(), cancellationToken: token);
            created = true;
            durations[Phase.Create] = Lap(clock);

            await client.StartAsync(new StartRequest { Id = id }, Headers(), cancellationToken: token);
            durations[Phase.Start] = Lap(clock);

            exitStatus = (await client.WaitAsync(new WaitRequest { Id = id }, Headers(), cancellationToken: token)).ExitStatus;
            durations[Phase.Wait] = Lap(clock);
        }
        catch (Exception e) when (e is OperationCanceledException || e is RpcException { StatusCode: StatusCode.Cancelled })
        {
            error = cancellationToken.IsCancellationRequested ? "interrupted" : $"timed out after {options.Timeout.TotalSeconds:0.#} s";
        }
        catch (RpcException e)
        {
            error = $"{e.StatusCode}: {e.Status.Detail}";
        }
        catch (StressException e)
        {
            error = e.Message;
        }

        clock.Restart();
        var cleanupError = await CleanupAsync(id, bundle, client, created, exitStatus is null);
        if (channel is not null)
        {
            await channel.DisposeAsync();
        }
        if (error is null)
        {
            durations[Phase.Delete] = clock.Elapsed;
            error = cleanupError;
        }
        if (error is null && exitStatus != 0)
        {
            error = $"exited with status {exitStatus}";
        }
        return new TaskOutcome(id, durations, exitStatus, error);
    }

    private Metadata Headers() => new() { { "containerd-namespace-ttrpc", options.Namespace } };

    private async Task<string> StartShimAsync(string id, string bundle, CancellationToken token)
    {
        var result = await RunShimAsync(id, bundle, "start", token);
        if (result.ExitCode != 0 || result.Stdout.Length == 0)
        {
            throw new StressException($"shim start exited {result.ExitCode}: {result.Stderr.Trim()}");
        }
        return result.Stdout.Trim();
    }

    private async Task<(int ExitCode, string Stdout, string Stderr)> RunShimAsync(string id, string bundle, string action, CancellationToken token)
    {
        var start = new ProcessStartInfo(options.ShimPath!)
        {
            WorkingDirectory = bundle,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-namespace", options.Namespace, "-address", FakeContainerdAddress, "-id", id, action })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["TTRPC_ADDRESS"] = eventsAddress;
        using var process = Process.Start(start) ?? throw new StressException($"cannot start {options.ShimPath}");
        var stdout = process.StandardOutput.ReadToEndAsync(token);
        var stderr = process.StandardError.ReadToEndAsync(token);
        try
        {
            await process.WaitForExitAsync(token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    // On its own deadline: an interrupted run must still take its shims down and remove its bundles.
    private async Task<string?> CleanupAsync(string id, string bundle, TaskClient? client, bool created, bool mayBeRunning)
    {
        using var patience = new CancellationTokenSource(CleanupPatience);
        var token = patience.Token;
        string? firstError = null;
        if (client is not null)
        {
            try
            {
                if (created && mayBeRunning)
                {
                    await client.KillAsync(new KillRequest { Id = id, Signal = 9, All = true }, Headers(), cancellationToken: token);
                    await client.WaitAsync(new WaitRequest { Id = id }, Headers(), cancellationToken: token);
                }
                if (created)
                {
                    await client.DeleteAsync(new DeleteRequest { Id = id }, Headers(), cancellationToken: token);
                }
                await client.ShutdownAsync(new ShutdownRequest { Id = id }, Headers(), cancellationToken: token);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Unavailable)
            {
                // Unavailable: Shutdown's connection goes away with the shim, which is the point.
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                firstError = $"cleanup: {(e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : "timed out")}";
            }
        }
        if (firstError is not null || client is null)
        {
            // The shim's own "delete" action removes what a failed start or create left (processes, mounts, socket).
            try
            {
                await RunShimAsync(id, bundle, "delete", token);
            }
            catch (Exception e) when (e is OperationCanceledException or System.ComponentModel.Win32Exception or StressException)
            {
                firstError ??= $"cleanup: shim delete: {e.Message}";
            }
        }
        try
        {
            Directory.Delete(bundle, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
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
