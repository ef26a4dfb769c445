using System.Globalization;
using Containerd.Runtime.TaskV2;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Mounts;
using Containerd.Shimkit.Processes;
using Containerd.Shimkit.Tasks;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Containerd.Shimkit;

/// <summary>
/// <c>delete</c>: containerd's cleanup after a shim died with a task in it. Kills what is left of the task (through
/// its cgroup, or a pidfd whose process is verified to be the task's), unmounts the rootfs, and prints a
/// DeleteResponse (exit status 137, as for SIGKILL).
/// </summary>
internal static class ShimDelete
{
    /// <summary>Left in the bundle by a server that Shutdown stopped with no task left: every task was deleted
    /// through the Task API, so nothing of this bundle's is left to clean.</summary>
    internal const string CleanShutdownFile = "shim-clean-shutdown";

    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(5);

    public static int Run(ShimFlags flags, IOrphanCleanup? cleanup = null)
    {
        var bundle = flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory();
        if (File.Exists(Path.Combine(bundle, CleanShutdownFile)))
        {
            // containerd runs `delete` whenever a shim's connection closes, a clean exit included, and waits for it
            // before its task Delete returns: when the server said it left nothing behind, answer at once (nothing
            // on stderr either: containerd logs any of it as a cleanup warning). A NativeAOT shim answers this case
            // in the kit's native constructor already (native/clean_delete.c), before the runtime starts; this is
            // for a shim built without it.
            return WriteResponse(0, 0);
        }
        var pid = ReadPid(flags, bundle);
        var spec = LoadSpec(flags, bundle);
        KillTask(flags, bundle, spec, pid);
        cleanup?.CleanupOrphan(flags.Namespace, flags.Id, bundle);
        try
        {
            RootfsMount.UnmountAll(Path.Combine(bundle, "rootfs"));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"delete {flags.Id}: {e.Message}");
        }
        RemoveCgroup(flags, spec, pid);
        return WriteResponse(pid, 128 + Libc.SIGKILL);
    }

    /// <summary>
    /// Kills what is left of the task without trusting <c>init.pid</c>, which names whatever process has that number
    /// now: through the container's cgroup when it has one (every process in it, see <see cref="CgroupKill"/>),
    /// otherwise the recorded pid only if its start time is still the one recorded at Create.
    /// </summary>
    private static void KillTask(ShimFlags flags, string bundle, Oci.Spec? spec, int pid)
    {
        if (spec?.Linux is { } linux)
        {
            try
            {
                var cgroup = Cgroups.Cgroup.Open(Cgroups.CgroupHierarchy.Host, Cgroups.CgroupPath.Resolve(linux.CgroupsPath, flags.Namespace, flags.Id));
                if (cgroup.Directories.Any(Directory.Exists))
                {
                    if (CgroupKill.KillAll(cgroup, KillTimeout, out var problem))
                    {
                        ShimLog.Info($"delete {flags.Id}: cgroup {cgroup.Path} is empty");
                        return;
                    }
                    ShimLog.Warn($"delete {flags.Id}: {problem}");
                }
            }
            catch (Exception e) when (e is ShimException or IOException or UnauthorizedAccessException)
            {
                ShimLog.Warn($"delete {flags.Id}: the task's cgroup: {e.Message}");
            }
        }
        if (pid > 0)
        {
            KillRecorded(flags.Id, bundle, pid);
        }
    }

    /// <summary>Kills <paramref name="pid"/> through a pidfd if its start time is the one recorded at Create; true
    /// when it was killed (and has exited).</summary>
    internal static bool KillRecorded(string id, string bundle, int pid)
    {
        var recorded = ReadNumber(Path.Combine(bundle, TaskService.PidStartFileName));
        if (recorded is null)
        {
            ShimLog.Warn($"delete {id}: not killing process {pid}: no start time was recorded for it, so it may be another process by now");
            return false;
        }
        using var process = ProcessHandle.Open(pid);
        if (process is null)
        {
            return false;
        }
        // Read after the pidfd exists, so a successful signal proves the start time was this process's.
        if (ProcessHandle.StartTime(pid) != recorded)
        {
            ShimLog.Warn($"delete {id}: process {pid} is not the task's any more (it started at another time): left alone");
            return false;
        }
        if (!process.Signal(Libc.SIGKILL))
        {
            return false;
        }
        ShimLog.Info($"delete {id}: killed leftover process {pid}");
        return process.WaitExited(KillTimeout);
    }

    private static int ReadPid(ShimFlags flags, string bundle)
    {
        var pidFile = Path.Combine(bundle, TaskService.PidFileName);
        if (ReadNumber(pidFile) is { } pid && pid is > 0 and <= int.MaxValue)
        {
            return (int)pid;
        }
        if (File.Exists(pidFile))
        {
            ShimLog.Warn($"delete {flags.Id}: {pidFile} holds no pid");
        }
        return 0;
    }

    // A small number file of the bundle (init.pid, its start time); null when missing or not a number.
    private static ulong? ReadNumber(string path)
    {
        try
        {
            return ulong.TryParse(BoundedRead.Text(path, 64).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Missing, unreadable, or more than a number could be.
            return null;
        }
    }

    private static Oci.Spec? LoadSpec(ShimFlags flags, string bundle)
    {
        try
        {
            return Oci.Spec.Load(Path.Combine(bundle, "config.json"));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"delete {flags.Id}: {e.Message}");
            return null;
        }
    }

    /// <summary>Writes <see cref="CleanShutdownFile"/>; a failure only costs the next <c>delete</c> its full work.</summary>
    internal static void MarkCleanShutdown(string bundle)
    {
        try
        {
            File.WriteAllBytes(Path.Combine(bundle, CleanShutdownFile), []);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"writing {CleanShutdownFile}: {e.Message}");
        }
    }

    private static int WriteResponse(int pid, int exitStatus)
    {
        var response = new DeleteResponse
        {
            Pid = (uint)pid,
            ExitStatus = (uint)exitStatus,
            ExitedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        };
        using var stdout = Console.OpenStandardOutput();
        response.WriteTo(stdout);
        stdout.Flush();
        return 0;
    }

    // The cgroup the dead shim made for the task (see Cgroups.Cgroup), once the killed processes have left it.
    private static void RemoveCgroup(ShimFlags flags, Oci.Spec? spec, int pid)
    {
        if (spec?.Linux is null)
        {
            return;
        }
        try
        {
            var path = Cgroups.CgroupPath.Resolve(spec.Linux.CgroupsPath, flags.Namespace, flags.Id);
            Cgroups.Cgroup.Open(Cgroups.CgroupHierarchy.Host, path).Delete(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is ShimException or IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"delete {flags.Id}: removing the cgroup of process {pid}: {e.Message}");
        }
    }
}
