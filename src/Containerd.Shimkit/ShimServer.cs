using System.Net.Sockets;
using System.Runtime.InteropServices;
using Containerd.Shimkit.Events;
using Containerd.Shimkit.Processes;
using Containerd.Shimkit.Tasks;
using Microsoft.Win32.SafeHandles;
using Ttrpc;
using TaskApi = Containerd.Runtime.TaskV2.Task;

namespace Containerd.Shimkit;

/// <summary>
/// The long-lived shim process: serves the Task service on the socket inherited as fd 3 until containerd shuts
/// it down (no task left) or it receives SIGTERM/SIGINT, then removes its socket and exits.
/// </summary>
internal static class ShimServer
{
    private const int ListenerFd = 3;

    public static int Run(ShimInfo info, IInstanceFactory factory, ShimFlags flags)
    {
        var bundle = flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory();
        var logWriter = OpenLog(bundle);
        if (logWriter is not null)
        {
            ShimLog.Configure(logWriter, flags.Debug);
        }
        else
        {
            ShimLog.Configure(Console.Error, flags.Debug);
        }
        try
        {
            return RunAsync(info, factory, flags, bundle).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            ShimLog.Error("shim server failed", e);
            return 1;
        }
        finally
        {
            logWriter?.Dispose();
        }
    }

    private static async Task<int> RunAsync(ShimInfo info, IInstanceFactory factory, ShimFlags flags, string bundle)
    {
        // Orphans of our instances are re-parented to us and must be reaped here, not by init.
        Reaper.BecomeSubreaper();

        // The inherited listener has no close-on-exec flag; children must not inherit it.
        Libc.Fcntl(ListenerFd, Libc.F_SETFD, Libc.FD_CLOEXEC);
        var listener = new Socket(new SafeSocketHandle(ListenerFd, ownsHandle: true));
        var socketPath = SocketAddress.ToPath(SocketAddress.Compute(flags.Address, flags.Namespace, ShimStart.GroupingId(bundle, flags.Id)));

        var ttrpcAddress = Environment.GetEnvironmentVariable("TTRPC_ADDRESS") ?? (flags.Address + ".ttrpc");
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var signalled = 0;
        await using var events = new EventPublisher(ttrpcAddress);
        var service = new TaskService(factory, events, new TaskServiceOptions
        {
            Info = info,
            DefaultNamespace = flags.Namespace,
            ContainerdAddress = flags.Address,
            TtrpcAddress = ttrpcAddress,
            CleanShutdownBundle = bundle,
            OnShutdown = () => stop.TrySetResult(),
        });

        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            Interlocked.Exchange(ref signalled, 1);
            ShimLog.Info($"received {ctx.Signal}: shutting down");
            stop.TrySetResult();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        var server = new TtrpcServer(new TtrpcServerOptions
        {
            // containerd runs as root: a peer of any other uid is dropped, even if the socket's mode let it in.
            RequireSameUser = true,
            ExceptionMapper = e => ShimErrors.ToStatus(e),
        });
        TaskApi.BindService(server.Binder, service);
        server.Listen(listener);
        await server.StartAsync().ConfigureAwait(false);
        WriteShimPid(bundle);
        ShimTrace.Mark("server: serving");
        ShimLog.Info($"{info.RuntimeName} {info.Version} serving {flags.Id} in namespace {flags.Namespace} (pid {Environment.ProcessId})");

        await stop.Task.ConfigureAwait(false);
        if (Volatile.Read(ref signalled) == 1)
        {
            await service.KillAllAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        // Let the Shutdown call that got us here receive its answer before the connection closes.
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await server.ShutdownAsync(grace.Token).ConfigureAwait(false);
        }
        try
        {
            File.Delete(socketPath);
        }
        catch (IOException)
        {
        }
        ShimLog.Info("shim exiting");
        ShimTrace.Mark("server: exiting");
        return 0;
    }

    /// <summary>
    /// Opens the bundle's <c>log</c> FIFO, which containerd reads. Write-only and non-blocking: a full pipe or a
    /// containerd that stopped reading drops log lines instead of stalling the shim.
    /// </summary>
    internal static StreamWriter? OpenLog(string bundle)
    {
        var path = Path.Combine(bundle, "log");
        if (!File.Exists(path))
        {
            return null;
        }
        var fd = Libc.Open(path, Libc.O_WRONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            // No reader yet (ENXIO): hold a read end ourselves so the open cannot fail or block.
            fd = Libc.Open(path, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        }
        if (fd < 0)
        {
            return null;
        }
        var stream = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
        return new StreamWriter(stream) { AutoFlush = false };
    }

    private static void WriteShimPid(string bundle)
    {
        try
        {
            File.WriteAllText(Path.Combine(bundle, "shim.pid"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"writing shim.pid: {e.Message}");
        }
    }
}
