using System.Globalization;
using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Runwasi.Services.Sandbox.V1;
using Ttrpc;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>Where a shared-mode daemon listens, and how to tell it.</summary>
/// <param name="RuntimeName">The runtime type containerd uses for the client shim, e.g. <c>io.containerd.wasmtimed.v1</c>.</param>
/// <param name="DaemonName">The daemon's executable name, for messages (e.g. <c>containerd-wasmtimed</c>).</param>
/// <param name="SocketVariable">The environment variable that overrides the manager socket, read by daemon and client.</param>
public sealed record SharedModeEndpoint(string RuntimeName, string DaemonName, string SocketVariable)
{
    /// <summary>The daemon's folder under /run: <c>/run/&lt;runtime name&gt;</c>.</summary>
    public string DefaultRunDir => "/run/" + RuntimeName;

    /// <summary>The manager socket, unless <see cref="SocketVariable"/> names another.</summary>
    public string DefaultSocket => Path.Combine(DefaultRunDir, "manager.sock");

    /// <summary>The manager socket in effect: the variable's value, else <see cref="DefaultSocket"/>.</summary>
    public string Socket => Environment.GetEnvironmentVariable(SocketVariable) is { Length: > 0 } s ? s : DefaultSocket;
}

/// <summary>
/// The daemon of shared mode: serves the manager API on its socket until SIGTERM/SIGINT, with every sandbox's Task
/// service in this process. One daemon per socket: a second one refuses to start; sockets a dead daemon left behind
/// are removed at start.
/// </summary>
public static class SharedDaemon
{
    /// <summary>
    /// Runs the daemon: <c>[--socket PATH] [--debug]</c>, or <c>--version</c>. Sandbox sockets go to a folder
    /// <c>sandboxes</c> beside the manager socket. Returns the process exit code.
    /// </summary>
    public static int Run(ShimInfo info, SharedModeEndpoint endpoint, IInstanceFactory factory, string[] args)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(factory);
        var socket = endpoint.Socket;
        var debug = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--socket" or "-socket" when i + 1 < args.Length:
                    socket = args[++i];
                    break;
                case "--debug" or "-debug":
                    debug = true;
                    break;
                case "--version" or "-v" or "-version":
                    Console.Out.Write($"{endpoint.DaemonName}:\n  Runtime: {info.RuntimeName}\n  Version: {info.Version}\n  Revision: {info.Revision}\n");
                    return 0;
                default:
                    Console.Error.WriteLine($"usage: {endpoint.DaemonName} [--socket PATH] [--debug]   (unknown argument {args[i]}; " +
                        $"the socket defaults to ${endpoint.SocketVariable}, else {endpoint.DefaultSocket})");
                    return 2;
            }
        }
        ShimLog.Configure(Console.Error, debug);
        try
        {
            return RunAsync(info, endpoint, factory, Path.GetFullPath(socket)).GetAwaiter().GetResult();
        }
        catch (ShimException e)
        {
            ShimLog.Error(e.Message);
            return 1;
        }
        catch (Exception e)
        {
            ShimLog.Error($"{endpoint.DaemonName} failed", e);
            return 1;
        }
    }

    private static async Task<int> RunAsync(ShimInfo info, SharedModeEndpoint endpoint, IInstanceFactory factory, string socket)
    {
        var dir = Path.GetDirectoryName(socket)!;
        Directory.CreateDirectory(dir);
        var lockFd = AcquireLock(socket + ".lock", endpoint, socket);
        try
        {
            // We hold the lock, so whatever is there is a dead daemon's: its sockets serve nobody.
            var sandboxDir = Path.Combine(dir, "sandboxes");
            RemoveStale(socket, sandboxDir);
            Directory.CreateDirectory(sandboxDir);

            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnSignal(PosixSignalContext ctx)
            {
                ctx.Cancel = true;
                ShimLog.Info($"received {ctx.Signal}: shutting down");
                stop.TrySetResult();
            }
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

            await using var manager = new SandboxManager(info, factory, sandboxDir);
            var server = new TtrpcServer(new TtrpcServerOptions
            {
                // Client shims run as root: a peer of any other uid is dropped, even if the socket's mode let it in.
                RequireSameUser = true,
                ExceptionMapper = e => ShimErrors.ToStatus(e),
            });
            Manager.BindService(server.Binder, manager);
            server.Listen(socket);
            await server.StartAsync().ConfigureAwait(false);
            ShimLog.Info($"{endpoint.DaemonName} {info.Version} serving {info.RuntimeName} sandboxes on {socket} (pid {Environment.ProcessId})");

            await stop.Task.ConfigureAwait(false);
            // Sandboxes first: their tasks are killed and their exits recorded in the bundles while the manager
            // still answers, so a client shim's delete finds every status.
            await manager.DisposeAsync().ConfigureAwait(false);
            using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            {
                try
                {
                    await server.ShutdownAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            TryDelete(socket);
            ShimLog.Info($"{endpoint.DaemonName} exiting");
            return 0;
        }
        finally
        {
            Native.Close(lockFd);
        }
    }

    private static int AcquireLock(string path, SharedModeEndpoint endpoint, string socket)
    {
        var fd = Native.Open(path, Native.O_RDWR | Native.O_CREAT | Native.O_CLOEXEC, 0b110_000_000);
        if (fd < 0)
        {
            throw new ShimException(Grpc.Core.StatusCode.Internal, $"open {path}: errno {Marshal.GetLastPInvokeError()}");
        }
        if (Native.Flock(fd, Native.LOCK_EX | Native.LOCK_NB) != 0)
        {
            Native.Close(fd);
            var holder = ReadPid(path);
            throw new ShimException(Grpc.Core.StatusCode.FailedPrecondition,
                $"another {endpoint.DaemonName}{(holder is { } pid ? $" (pid {pid})" : "")} already serves {socket}: stop it first, or pass --socket for a second one");
        }
        // Through our descriptor: .NET's own file APIs take a shared flock of their own and would fail on it.
        var ownPid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Native.Ftruncate(fd, 0);
        Native.Write(fd, ownPid, (nuint)ownPid.Length);
        return fd;
    }

    private static int? ReadPid(string path)
    {
        try
        {
            using var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.ReadWrite });
            var text = System.Text.Encoding.ASCII.GetString(BoundedRead.ToEnd(stream, 64, path));
            return int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void RemoveStale(string socket, string sandboxDir)
    {
        if (File.Exists(socket))
        {
            ShimLog.Info($"removing the stale socket {socket}");
            TryDelete(socket);
        }
        if (Directory.Exists(sandboxDir))
        {
            foreach (var stale in Directory.EnumerateFileSystemEntries(sandboxDir))
            {
                ShimLog.Info($"removing the stale sandbox socket {stale}");
                TryDelete(stale);
            }
        }
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
