using System.Diagnostics;
using Containerd.Runtime.TaskV2;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
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
        string? address = null;
        uint? exitStatus = null;
        string? error = null;
        var clock = Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(bundle);
            var spec = DefaultSpec.Build(options.Namespace, id, options.Args, [], "/", rootPath: Path.GetFullPath(options.Rootfs!));
            await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), spec, token);
            // `start` is not cut short by an interrupt: killed after spawning the server, it would leave that server
            // running with nobody knowing its address. It is quick; the interrupt is honoured right after it.
            using (var startPatience = new CancellationTokenSource(CleanupPatience))
            {
                address = await StartShimAsync(id, bundle, startPatience.Token);
            }
            channel = new TtrpcChannel(address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address);
            client = new TaskClient(channel.CreateCallInvoker());
            token.ThrowIfCancellationRequested();
            await client.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }, Headers(), cancellationToken: token);
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
        catch (IOException e)
        {
            // The ttrpc connection to the address the shim printed failed.
            error = $"connecting to the shim: {e.Message}";
        }
        var createFailed = error is not null && !durations.ContainsKey(Phase.Create) && !cancellationToken.IsCancellationRequested
            && !error.StartsWith("timed out", StringComparison.Ordinal);

        clock.Restart();
        var cleanupError = await CleanupAsync(id, bundle, address, client, exitStatus is null);
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
        return new TaskOutcome(id, durations, exitStatus, error) { CreateFailed = createFailed };
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
    private async Task<string?> CleanupAsync(string id, string bundle, string? address, TaskClient? client, bool mayBeRunning)
    {
        using var patience = new CancellationTokenSource(CleanupPatience);
        var token = patience.Token;
        string? firstError = null;
        var shimGone = false;
        async Task Attempt(Func<Task> action)
        {
            try
            {
                await action();
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.NotFound)
            {
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                firstError ??= $"cleanup: {(e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : "timed out")}";
            }
        }
        if (client is not null)
        {
            uint shimPid = 0;
            await Attempt(async () => shimPid = (await client.ConnectAsync(new ConnectRequest { Id = id }, Headers(), cancellationToken: token)).ShimPid);
            // An interrupted Create may still have made the task, so a task is looked for whenever the shim runs.
            if (mayBeRunning)
            {
                await Attempt(async () =>
                {
                    await client.KillAsync(new KillRequest { Id = id, Signal = 9, All = true }, Headers(), cancellationToken: token);
                    await client.WaitAsync(new WaitRequest { Id = id }, Headers(), cancellationToken: token);
                });
            }
            await Attempt(async () => await client.DeleteAsync(new DeleteRequest { Id = id }, Headers(), cancellationToken: token));
            try
            {
                await client.ShutdownAsync(new ShutdownRequest { Id = id }, Headers(), cancellationToken: token);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.NotFound)
            {
                // The shim may exit before its reply is read: the connection going away is the point.
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException)
            {
                firstError ??= $"cleanup: shutdown: {(e is RpcException r ? $"{r.StatusCode}: {r.Status.Detail}" : "timed out")}";
            }
            // A normal-mode shim exits just after answering Shutdown; a shared-mode sandbox closes its socket and the
            // daemon (the pid Connect reported) lives on. A task counts as done once its shim is gone or no longer
            // serves the task's socket.
            shimGone = shimPid != 0 && address is not null && await GoneAsync((int)shimPid, address, token);
        }
        if (!shimGone)
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

    private static async Task<bool> GoneAsync(int pid, string address, CancellationToken token)
    {
        var socket = address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
        try
        {
            while (Directory.Exists($"/proc/{pid}") && !IsZombie(pid) && (socket.StartsWith('@') || File.Exists(socket)))
            {
                await Task.Delay(2, token);
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    // The shim is started in its own session by `start`, which exits; until init reaps it, /proc shows a zombie.
    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..];
            return state.StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static TimeSpan Lap(Stopwatch clock)
    {
        var elapsed = clock.Elapsed;
        clock.Restart();
        return elapsed;
    }
}
