using Containerd.Shimkit;
using Containerd.Shimkit.Events;
using Containerd.Shimkit.Tasks;
using Ttrpc;
using TaskApi = Containerd.Runtime.TaskV2.Task;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// One sandbox of the daemon: what a shim process is in normal mode, minus the process. The kit's
/// <see cref="TaskService"/> over the daemon's in-process instance factory, served on a socket of its own, publishing
/// its events to the containerd that created it.
/// </summary>
internal sealed class Sandbox
{
    private readonly TtrpcServer _server;
    private readonly EventPublisher _events;
    private int _closed;

    private Sandbox(string ns, string id, string socketPath, TaskService tasks, TtrpcServer server, EventPublisher events)
    {
        Namespace = ns;
        Id = id;
        SocketPath = socketPath;
        Tasks = tasks;
        _server = server;
        _events = events;
    }

    public string Namespace { get; }
    public string Id { get; }
    public string SocketPath { get; }
    public TaskService Tasks { get; }

    /// <summary>Completes when containerd shut the sandbox down (its last task was deleted) or it was closed.</summary>
    public TaskCompletionSource ShutdownRequested { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Binds <paramref name="socketPath"/> and serves the Task API there.</summary>
    public static async Task<Sandbox> StartAsync(ShimInfo info, IInstanceFactory factory, string ns, string id,
        string containerdAddress, string ttrpcAddress, string socketPath, string? bundle = null)
    {
        var events = new EventPublisher(ttrpcAddress);
        TaskCompletionSource shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = new TaskService(factory, events, new TaskServiceOptions
        {
            Info = info,
            DefaultNamespace = ns,
            ContainerdAddress = containerdAddress,
            TtrpcAddress = ttrpcAddress,
            // The client shim's `delete` after a clean shutdown is then answered by its native constructor.
            CleanShutdownBundle = string.IsNullOrEmpty(bundle) ? null : bundle,
            OnShutdown = () => shutdown.TrySetResult(),
        });
        var server = new TtrpcServer(new TtrpcServerOptions
        {
            // containerd runs as root: a peer of any other uid is dropped, even if the socket's mode let it in.
            RequireSameUser = true,
            ExceptionMapper = e => ShimErrors.ToStatus(e),
        });
        TaskApi.BindService(server.Binder, tasks);
        try
        {
            TryDelete(socketPath);
            server.Listen(socketPath);
            await server.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            await events.DisposeAsync().ConfigureAwait(false);
            TryDelete(socketPath);
            throw;
        }
        var sandbox = new Sandbox(ns, id, socketPath, tasks, server, events);
        _ = shutdown.Task.ContinueWith(_ => sandbox.ShutdownRequested.TrySetResult(), TaskScheduler.Default);
        return sandbox;
    }

    /// <summary>
    /// Stops serving: kills what still runs (when <paramref name="killTasks"/>), lets in-flight calls (the Shutdown
    /// that got us here) answer, sends the queued events, removes the socket. Idempotent.
    /// </summary>
    public async Task CloseAsync(bool killTasks)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }
        if (killTasks)
        {
            await Tasks.KillAllAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            try
            {
                await _server.ShutdownAsync(grace.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        await _events.DisposeAsync().ConfigureAwait(false);
        TryDelete(SocketPath);
        ShutdownRequested.TrySetResult();
        ShimLog.Info($"sandbox {Id} in namespace {Namespace} closed");
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
