using System.Security.Cryptography;
using System.Text;
using Containerd.Shimkit;
using Grpc.Core;
using Runwasi.Services.Sandbox.V1;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// The daemon's <c>runwasi.services.sandbox.v1.Manager</c> service: creates, finds and shuts down sandboxes, each a
/// Task service of its own on a socket under <see cref="SandboxSocketDir"/>, all sharing one instance factory.
/// </summary>
public sealed class SandboxManager : Manager.ManagerBase, IAsyncDisposable
{
    private readonly ShimInfo _info;
    private readonly IInstanceFactory _factory;
    private readonly ISharedHost? _host;
    private readonly Dictionary<(string Namespace, string Id), Task<Sandbox>> _sandboxes = [];
    private readonly Lock _gate = new();
    private bool _closed;

    /// <summary>Creates the manager.</summary>
    /// <param name="info">The daemon's identity (its version is what Task.Connect reports).</param>
    /// <param name="factory">Creates every instance of every sandbox (in process).</param>
    /// <param name="sandboxSocketDir">Where sandbox sockets go; the daemon empties it at start.</param>
    public SandboxManager(ShimInfo info, IInstanceFactory factory, string sandboxSocketDir)
    {
        _info = info;
        _host = factory as ISharedHost;
        _factory = new RecordingInstanceFactory(factory);
        SandboxSocketDir = sandboxSocketDir;
    }

    /// <summary>The folder holding the sandboxes' sockets.</summary>
    public string SandboxSocketDir { get; }

    /// <summary>Number of sandboxes being served.</summary>
    public int SandboxCount
    {
        get
        {
            lock (_gate)
            {
                return _sandboxes.Count;
            }
        }
    }

    /// <inheritdoc/>
    public override async Task<CreateResponse> Create(CreateRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.Id))
        {
            throw new ShimException(StatusCode.InvalidArgument, "create sandbox: the id is empty");
        }
        if (string.IsNullOrEmpty(request.Namespace))
        {
            throw new ShimException(StatusCode.InvalidArgument, $"create sandbox {request.Id}: the namespace is empty");
        }
        if (string.IsNullOrEmpty(request.TtrpcAddress))
        {
            throw new ShimException(StatusCode.InvalidArgument, $"create sandbox {request.Id}: containerd's ttrpc address is empty");
        }
        var key = (request.Namespace, request.Id);
        Task<Sandbox> pending;
        var created = false;
        lock (_gate)
        {
            if (_closed)
            {
                throw new ShimException(StatusCode.Unavailable, $"create sandbox {request.Id}: the daemon is shutting down");
            }
            if (!_sandboxes.TryGetValue(key, out pending!))
            {
                pending = Sandbox.StartAsync(_info, _factory, request.Namespace, request.Id, request.ContainerdAddress,
                    request.TtrpcAddress, SocketPathFor(request.Namespace, request.Id), request.WorkingDirectory);
                _sandboxes[key] = pending;
                created = true;
            }
        }
        Sandbox sandbox;
        try
        {
            sandbox = await pending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                if (_sandboxes.TryGetValue(key, out var current) && current == pending)
                {
                    _sandboxes.Remove(key);
                }
            }
            throw new ShimException(StatusCode.Internal, $"create sandbox {request.Id}: {e.Message}", e);
        }
        if (created)
        {
            _ = ForgetWhenShutDownAsync(key, sandbox);
            ShimLog.Info($"sandbox {request.Id} in namespace {request.Namespace} serving on {sandbox.SocketPath}");
        }
        return new CreateResponse { SocketPath = sandbox.SocketPath };
    }

    /// <inheritdoc/>
    public override async Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context)
    {
        Task<Sandbox>[] matches;
        lock (_gate)
        {
            matches = [.. _sandboxes.Where(s => s.Key.Id == request.Id && (request.Namespace.Length == 0 || s.Key.Namespace == request.Namespace))
                .Select(s => s.Value)];
        }
        if (matches.Length == 0)
        {
            throw new ShimException(StatusCode.NotFound, $"sandbox {request.Id} not found");
        }
        if (matches.Length > 1)
        {
            throw new ShimException(StatusCode.FailedPrecondition,
                $"sandbox {request.Id} exists in {matches.Length} namespaces: name the namespace");
        }
        var sandbox = await matches[0].ConfigureAwait(false);
        return new ConnectResponse { SocketPath = sandbox.SocketPath };
    }

    /// <inheritdoc/>
    public override async Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context)
    {
        Task<Sandbox>? pending;
        lock (_gate)
        {
            if (_sandboxes.Remove((request.Namespace, request.Id), out pending))
            {
            }
        }
        if (pending is null)
        {
            throw new ShimException(StatusCode.NotFound, $"sandbox {request.Id} in namespace {request.Namespace} not found");
        }
        var sandbox = await pending.ConfigureAwait(false);
        await sandbox.CloseAsync(killTasks: true).ConfigureAwait(false);
        return new DeleteResponse();
    }

    /// <inheritdoc/>
    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        Task<Sandbox>[] all;
        lock (_gate)
        {
            all = [.. _sandboxes.Values];
        }
        var ready = all.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).ToList();
        var response = new StatusResponse
        {
            Pid = (uint)Environment.ProcessId,
            Sandboxes = (uint)all.Length,
            Tasks = (uint)ready.Sum(s => s.Tasks.TaskCount),
            RunningInstances = (uint)(_host?.RunningInstances ?? 0),
            Compilations = (ulong)(_host?.Compilations ?? 0),
            CachedModules = (uint)(_host?.CachedModules ?? 0),
            Version = _info.Version,
        };
        response.Sockets.AddRange(ready.Select(s => s.SocketPath));
        return Task.FromResult(response);
    }

    /// <summary>Shuts every sandbox down, killing what runs in them; later Creates fail.</summary>
    public async ValueTask DisposeAsync()
    {
        Task<Sandbox>[] all;
        lock (_gate)
        {
            _closed = true;
            all = [.. _sandboxes.Values];
            _sandboxes.Clear();
        }
        foreach (var pending in all)
        {
            try
            {
                var sandbox = await pending.ConfigureAwait(false);
                await sandbox.CloseAsync(killTasks: true).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                ShimLog.Error("closing a sandbox at exit", e);
            }
        }
    }

    /// <summary>A new socket path for sandbox (<paramref name="ns"/>, <paramref name="id"/>): a digest keeps any id short
    /// and safe as a file name; a random suffix keeps a sandbox that is closing from removing the socket of its
    /// successor of the same id.</summary>
    public string SocketPathFor(string ns, string id)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(ns + "/" + id));
        return Path.Combine(SandboxSocketDir,
            $"{Convert.ToHexStringLower(digest)[..32]}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}.sock");
    }

    private async Task ForgetWhenShutDownAsync((string, string) key, Sandbox sandbox)
    {
        await sandbox.ShutdownRequested.Task.ConfigureAwait(false);
        lock (_gate)
        {
            if (_sandboxes.TryGetValue(key, out var current) && current.IsCompletedSuccessfully && current.Result == sandbox)
            {
                _sandboxes.Remove(key);
            }
        }
        // Shutdown from containerd: no task is left to kill.
        await sandbox.CloseAsync(killTasks: false).ConfigureAwait(false);
    }
}
