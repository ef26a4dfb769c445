using System.Globalization;
using Containerd.Runtime.TaskV2;
using Containerd.Shimkit.Mounts;
using Containerd.Shimkit.Tasks;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Containerd.Shimkit;

/// <summary>
/// <c>delete</c>: containerd's cleanup after a shim died with a task in it. Kills the task's process if it is
/// still alive, unmounts the rootfs, and prints a DeleteResponse (exit status 137, as for SIGKILL).
/// </summary>
internal static class ShimDelete
{
    /// <summary>Left in the bundle by a server that Shutdown stopped with no task left: every task was deleted
    /// through the Task API, so nothing of this bundle's is left to clean.</summary>
    internal const string CleanShutdownFile = "shim-clean-shutdown";

    public static int Run(ShimFlags flags, IOrphanCleanup? cleanup = null)
    {
        var bundle = flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory();
        if (File.Exists(Path.Combine(bundle, CleanShutdownFile)))
        {
            // containerd runs `delete` whenever a shim's connection closes, a clean exit included, and waits for it
            // before its task Delete returns: when the server said it left nothing behind, answer at once (nothing
            // on stderr either: containerd logs any of it as a cleanup warning). The wasm shims answer this case in
            // their native constructor already (instance_setup.c), before the runtime starts.
            return WriteResponse(0, 0);
        }
        var pid = 0;
        var pidFile = Path.Combine(bundle, TaskService.PidFileName);
        try
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out pid) && pid > 0)
            {
                if (Libc.Kill(pid, Libc.SIGKILL) == 0)
                {
                    ShimLog.Info($"delete {flags.Id}: killed leftover process {pid}");
                }
            }
        }
        catch (IOException e)
        {
            ShimLog.Warn($"delete {flags.Id}: reading {pidFile}: {e.Message}");
        }
        cleanup?.CleanupOrphan(flags.Namespace, flags.Id, bundle);
        try
        {
            RootfsMount.UnmountAll(Path.Combine(bundle, "rootfs"));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"delete {flags.Id}: {e.Message}");
        }
        RemoveCgroup(flags, bundle, pid);
        return WriteResponse(pid, 128 + Libc.SIGKILL);
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

    // The cgroup the dead shim made for the task (see Cgroups.Cgroup), once the killed process has left it.
    private static void RemoveCgroup(ShimFlags flags, string bundle, int pid)
    {
        try
        {
            var spec = Oci.Spec.Load(Path.Combine(bundle, "config.json"));
            if (spec.Linux is null)
            {
                return;
            }
            var path = Cgroups.CgroupPath.Resolve(spec.Linux.CgroupsPath, flags.Namespace, flags.Id);
            Cgroups.Cgroup.Open(Cgroups.CgroupHierarchy.Host, path).Delete(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is ShimException or IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"delete {flags.Id}: removing the cgroup of process {pid}: {e.Message}");
        }
    }
}
