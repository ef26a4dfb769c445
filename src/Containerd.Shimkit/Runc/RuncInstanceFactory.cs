using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Processes;
using Grpc.Core;

namespace Containerd.Shimkit.Runc;

/// <summary>
/// Runs a container as a plain Linux container with runc, as containerd's own runc shim would: the bundle's
/// <c>config.json</c> as containerd wrote it, the rootfs the kit mounted at <c>&lt;bundle&gt;/rootfs</c>, the container's
/// stdio handed to runc as its fds 0-2 (no terminal), and the init process that <c>runc create</c> leaves behind
/// adopted by the shim (a child subreaper), so its exit status is the task's.
/// </summary>
public sealed class RuncInstanceFactory : IInstanceFactory, IOrphanCleanup
{
    /// <summary>The file in the bundle where <c>runc create</c> writes the init pid.</summary>
    public const string PidFileName = "runc-init.pid";

    private readonly RuncOptions _options;

    /// <summary>Creates the factory.</summary>
    public RuncInstanceFactory(RuncOptions options)
    {
        _options = options;
    }

    /// <summary>The options in use.</summary>
    public RuncOptions Options => _options;

    /// <inheritdoc/>
    public async Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        // Checked once: runc create is short, and interrupting it midway would leave state only runc delete removes.
        ct.ThrowIfCancellationRequested();
        var binary = _options.ResolveBinary() ?? throw new ShimException(StatusCode.FailedPrecondition,
            $"container {config.Id} is a Linux container and needs runc, but {_options.Binary} was not found " +
            $"({(_options.Binary.Contains('/') ? "no such file" : $"not on PATH nor at {string.Join(", ", RuncOptions.FallbackBinaries)}")})" +
            (_options.BinarySetting is { } setting ? $"; install runc or set {setting}" : ""));
        var root = _options.RootFor(config.Namespace);
        Directory.CreateDirectory(root);
        var runc = new RuncCli(binary, root, config.Bundle);
        var pidFile = Path.Combine(config.Bundle, PidFileName);

        // runc create exits once the init process waits for `runc start`; that process is then reparented to the
        // shim, and the adoption window keeps its exit even if it dies before it is claimed.
        using var adoption = Reaper.BeginAdoption();
        int pid;
        try
        {
            pid = await runc.CreateAsync(config.Id, config.Bundle, pidFile, config.Stdin, config.Stdout, config.Stderr).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            await DeleteQuietlyAsync(runc, config.Id).ConfigureAwait(false);
            throw new ShimException(e.Code, $"container {config.Id}: {e.Message}", e);
        }
        finally
        {
            // runc and the init process hold their own copies; ours would keep containerd from ever seeing EOF.
            config.Stdin?.Dispose();
            config.Stdout?.Dispose();
            config.Stderr?.Dispose();
        }

        ChildProcess init;
        try
        {
            init = adoption.Claim(pid);
        }
        catch (ShimException)
        {
            await DeleteQuietlyAsync(runc, config.Id).ConfigureAwait(false);
            throw;
        }
        ShimLog.Debug($"container {config.Id}: runc created init process {pid} (root {root})");
        return new RuncInstance(config.Id, config.Bundle, runc, init, OpenCgroup(config), RuncInstance.SharesPidNamespace(config.Spec));
    }

    /// <inheritdoc/>
    public void CleanupOrphan(string ns, string id, string bundle)
    {
        // Only a container this factory created has the pid file; runc delete --force removes its state and cgroup.
        if (!File.Exists(Path.Combine(bundle, PidFileName)) || _options.ResolveBinary() is not { } binary)
        {
            return;
        }
        var runc = new RuncCli(binary, _options.RootFor(ns), bundle);
        DeleteQuietlyAsync(runc, id).GetAwaiter().GetResult();
        ShimLog.Info($"delete {id}: removed the runc container left by a dead shim");
    }

    /// <summary>The cgroup runc made for the container (the same cgroupfs path rules), for Stats and OOM kills; null when
    /// the spec has none or it cannot be opened, which costs only the metrics.</summary>
    private static Cgroup? OpenCgroup(InstanceConfig config)
    {
        if (config.Spec.Linux is not { } linux)
        {
            return null;
        }
        try
        {
            // runc made it and owns it: opened as it is, nothing created or written.
            return Cgroup.Open(CgroupHierarchy.Host, CgroupPath.Resolve(linux.CgroupsPath, config.Namespace, config.Id));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"container {config.Id}: no metrics: {e.Message}");
            return null;
        }
    }

    private static async Task DeleteQuietlyAsync(RuncCli runc, string id)
    {
        try
        {
            await runc.DeleteAsync(id).ConfigureAwait(false);
        }
        catch (ShimException e)
        {
            ShimLog.Debug($"container {id}: runc delete after a failed create: {e.Message}");
        }
    }
}
