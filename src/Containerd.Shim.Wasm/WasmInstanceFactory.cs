using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Creates wasm containers as instance processes (see <see cref="InstanceProcess"/>): one OS process per container,
/// spawned through the kit's reaper from the shim's own executable, whose pid is the task pid. Create returns once
/// the child has prepared the program and said so, or fails with the child's reason after the child is reaped.
/// </summary>
/// <typeparam name="TEngine">The engine the instance processes run; the factory itself never instantiates it.</typeparam>
public sealed class WasmInstanceFactory<TEngine> : IInstanceFactory
    where TEngine : IEngine, new()
{
    private readonly string _executable;

    /// <summary>Creates the factory.</summary>
    /// <param name="instanceExecutable">The executable started in the instance role; defaults to this process's own
    /// executable (tests that host the factory elsewhere pass the shim binary).</param>
    public WasmInstanceFactory(string? instanceExecutable = null)
    {
        _executable = instanceExecutable ?? Environment.ProcessPath
            ?? throw new InvalidOperationException("cannot tell this process's executable path");
    }

    /// <inheritdoc/>
    public async Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        // A bad seccomp profile fails Create before anything is made or spawned.
        using var seccomp = InstanceSeccomp.Create(config.Spec);
        // Made before the spawn so a bad cgroupsPath or limit fails Create without a process to clean up; the
        // instance process joins it itself, before it reads anything of the container.
        var cgroup = InstanceCgroup.Create(config);
        SafeFileHandle plan;
        try
        {
            // Built before anything is spawned: a spec the instance cannot honour fails Create here, with the reason.
            plan = InstanceSetupFd.Create(InstanceSetupPlan.Build(config.Spec, cgroup?.Cgroup.Directories));
        }
        catch
        {
            cgroup?.Dispose();
            throw;
        }
        using var planFile = plan;
        using var charge = MemoryChargeFds.Open(cgroup);
        ShimTrace.Mark("server: Create: plan and cgroup made");
        using var control = Pipe.Create();
        var start = Pipe.Create();
        ChildProcess child;
        try
        {
            var files = new Dictionary<int, SafeHandle>
            {
                [InstanceProcess.ControlFd] = control.Write,
                [InstanceProcess.StartFd] = start.Read,
                [InstanceSetupPlan.Fd] = plan,
            };
            AddIfPresent(files, InstanceProcess.SeccompFd, seccomp);
            charge?.AddTo(files);
            AddIfPresent(files, 0, config.Stdin);
            AddIfPresent(files, 1, config.Stdout);
            AddIfPresent(files, 2, config.Stderr);
            child = Reaper.Spawn(new ProcessStartSpec
            {
                Path = _executable,
                Args = InstanceProcess.Arguments(_executable, config.Id, config.Bundle, config.Rootfs,
                    config.Namespace, config.ContainerdAddress),
                WorkingDirectory = config.Bundle,
                Files = files,
            });
        }
        catch
        {
            start.Dispose();
            cgroup?.Dispose();
            throw;
        }
        finally
        {
            // The child holds its own copies now. Keeping ours open would hide the child's death from the control
            // read, and keep containerd's stdout/stderr readers from ever seeing EOF.
            control.Write.Dispose();
            start.Read.Dispose();
            config.Stdin?.Dispose();
            config.Stdout?.Dispose();
            config.Stderr?.Dispose();
        }

        ShimTrace.Mark($"server: Create: spawned instance {child.Pid}");
        var instance = new WasmInstance(config.Id, child, start.Write, cgroup);
        ShimException? failure;
        try
        {
            // The child joined its cgroup before it touched the container (instance_setup.c): from here on the
            // shim only watches it for OOM kills.
            cgroup?.Watch(instance.RaiseOom);
            using var cancel = ct.Register(() => KillQuietly(child));
            failure = await Task.Run(() => ControlChannel.ReadReport(control.Read), CancellationToken.None).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            var status = await child.Exited.ConfigureAwait(false);
            start.Dispose();
            cgroup?.Dispose();
            ct.ThrowIfCancellationRequested();
            throw new ShimException(StatusCode.Internal,
                $"container {config.Id}: instance process {child.Pid} exited with status {status.ExitCode} before it was ready");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Watching or reading failed on our side: the child must not live on without a task.
            KillQuietly(child);
            await child.Exited.ConfigureAwait(false);
            start.Dispose();
            cgroup?.Dispose();
            throw;
        }
        if (failure is not null)
        {
            // The child exits right after reporting; wait for the reaper so no zombie or half-made task remains.
            start.Dispose();
            await child.Exited.ConfigureAwait(false);
            cgroup?.Dispose();
            throw failure;
        }
        ShimLog.Debug($"container {config.Id}: instance process {child.Pid} ready");
        ShimTrace.Mark("server: Create: instance ready");
        return instance;
    }

    private static void AddIfPresent(Dictionary<int, SafeHandle> files, int fd, SafeHandle? handle)
    {
        if (handle is not null)
        {
            files[fd] = handle;
        }
    }

    private static void KillQuietly(ChildProcess child)
    {
        try
        {
            child.Signal(Signals.SIGKILL);
        }
        catch (ShimException)
        {
            // Already gone.
        }
    }
}
