using System.Text.Json;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Processes;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Containerd.Shimkit.Runc;

/// <summary>
/// A Linux container run by runc (see <see cref="RuncInstanceFactory"/>). The task pid is the container's init
/// process, a child of the shim since <c>runc create</c> exited; its exit, collected by the reaper, is the task's.
/// </summary>
internal sealed class RuncInstance : IInstance, IInstanceResources
{
    /// <summary>The type URL containerd gives <c>UpdateTaskRequest.resources</c>: the runtime spec's LinuxResources as JSON.</summary>
    public const string LinuxResourcesTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    private const string UpdateFileName = "runc-update.json";

    private readonly string _id;
    private readonly string _bundle;
    private readonly RuncCli _runc;
    private static readonly TimeSpan OomPollInterval = TimeSpan.FromMilliseconds(500);

    private readonly ChildProcess _init;
    private readonly Cgroup? _cgroup;
    private readonly CgroupOomWatcher? _oomWatcher;
    private readonly Task<ExitStatus> _exit;
    private int _deleted;

    internal RuncInstance(string id, string bundle, RuncCli runc, ChildProcess init, Cgroup? cgroup, bool killAllOnExit)
    {
        _id = id;
        _bundle = bundle;
        _runc = runc;
        _init = init;
        _cgroup = cgroup;
        _exit = CollectExitAsync(killAllOnExit);
        if (cgroup is not null)
        {
            _oomWatcher = new CgroupOomWatcher(cgroup, OomPollInterval);
            _oomWatcher.OomKilled += () =>
            {
                ShimLog.Warn($"container {_id}: the kernel OOM-killed a process of its cgroup {cgroup.Path}");
                OomKilled?.Invoke();
            };
        }
    }

    /// <summary>The runc wrapper of this container (its state root and log).</summary>
    public RuncCli Runc => _runc;

    /// <summary>The container id runc knows it by.</summary>
    public string Id => _id;

    /// <inheritdoc/>
    public int Pid => _init.Pid;

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken ct)
    {
        try
        {
            await _runc.StartAsync(_id).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"container {_id}: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Kill(int signal) =>
        // Straight to the init pid, as runc kill would do, without starting runc; ChildProcess never signals a
        // reaped (possibly reused) pid. As with runc, an init in its own pid namespace only receives the signals it
        // handles, and SIGKILL.
        _init.Signal(signal);

    /// <inheritdoc/>
    public void KillAll(int signal)
    {
        if (_init.HasExited)
        {
            throw new ShimException(Grpc.Core.StatusCode.NotFound, $"container {_id}: process {_init.Pid} already finished");
        }
        try
        {
            _runc.KillAsync(_id, signal, all: true).GetAwaiter().GetResult();
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"container {_id}: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public Task<ExitStatus> WaitAsync(CancellationToken ct) => _exit.WaitAsync(ct);

    /// <summary>
    /// The task's exit: the init process's, once nothing of the container can still write to its stdio.
    /// </summary>
    /// <remarks>
    /// A container in its own pid namespace loses every process with its init. One that shares a pid namespace (a
    /// pod's, with Kubernetes' default <c>shareProcessNamespace</c>-less pods sharing the sandbox's, or the host's)
    /// keeps its other processes, which hold its stdout and stderr: containerd then waits for EOF on those FIFOs
    /// before it deletes the task, forever. As containerd's runc shim does, they are killed with the init.
    /// </remarks>
    private async Task<ExitStatus> CollectExitAsync(bool killAllOnExit)
    {
        var status = await _init.Exited.ConfigureAwait(false);
        if (killAllOnExit)
        {
            try
            {
                await _runc.KillAsync(_id, Libc.SIGKILL, all: true).ConfigureAwait(false);
            }
            catch (ShimException e)
            {
                ShimLog.Warn($"container {_id}: killing the processes its init left behind: {e.Message}");
            }
        }
        // An OOM kill that ended the container is reported before its exit.
        _oomWatcher?.Check();
        return status;
    }

    /// <summary>Whether a container of <paramref name="spec"/> outlives its init unless killed: it joins or shares a
    /// pid namespace instead of creating its own.</summary>
    internal static bool SharesPidNamespace(Oci.Spec spec) =>
        spec.Linux?.Namespaces?.FirstOrDefault(n => n.Type == "pid") is not { } pid || !string.IsNullOrEmpty(pid.Path);

    /// <inheritdoc/>
    public void Update(Any resources, IReadOnlyDictionary<string, string> annotations)
    {
        if (!string.IsNullOrEmpty(resources.TypeUrl) && !resources.TypeUrl.EndsWith("/LinuxResources", StringComparison.Ordinal))
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"update container {_id}: resources of type {resources.TypeUrl}, expected {LinuxResourcesTypeUrl}");
        }
        var json = resources.Value.ToByteArray();
        try
        {
            using var _ = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"update container {_id}: the resources are not a JSON document: {e.Message}", e);
        }
        // runc reads the document from a file; the bundle is the container's own folder, gone with the container.
        var file = Path.Combine(_bundle, UpdateFileName);
        File.WriteAllBytes(file, json);
        try
        {
            _runc.UpdateAsync(_id, file).GetAwaiter().GetResult();
        }
        catch (ShimException e)
        {
            throw new ShimException(e.Code, $"update container {_id}: {e.Message}", e);
        }
        finally
        {
            TryDeleteFile(file);
        }
    }

    /// <inheritdoc/>
    public Any Stats() =>
        (_cgroup ?? throw new ShimException(StatusCode.FailedPrecondition, $"stats of container {_id}: its cgroup could not be opened (see the shim log)"))
            .Stats();

    /// <inheritdoc/>
    public event Action? OomKilled;

    /// <inheritdoc/>
    public async ValueTask DeleteAsync()
    {
        if (Interlocked.Exchange(ref _deleted, 1) != 0)
        {
            return;
        }
        try
        {
            // --force: kills whatever is left in the container's cgroup, then removes the state and the cgroup.
            await _runc.DeleteAsync(_id).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"container {_id}: {e.Message}");
        }
        _oomWatcher?.Dispose();
        try
        {
            // runc removed the cgroup; this only sweeps what it might have left (missing directories count as removed).
            _cgroup?.Delete(TimeSpan.FromSeconds(2));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"container {_id}: {e.Message}");
        }
        // The namespace's root folder stays, as containerd's runc shim leaves its own: removing it could race another
        // shim's runc create in the same namespace.
        TryDeleteFile(Path.Combine(_bundle, RuncInstanceFactory.PidFileName));
    }

    private static void TryDeleteFile(string path)
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
