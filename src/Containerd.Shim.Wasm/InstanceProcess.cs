using Containerd.Shimkit;
using Containerd.Shimkit.Seccomp;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The instance role of a shim executable: the process that is one container. The shim spawns its own executable as
/// <c>exe --instance &lt;id&gt; &lt;bundle&gt; &lt;rootfs&gt; [&lt;namespace&gt; &lt;containerd address&gt;]</c> with fds 0-2 on the container's FIFOs, fd 3 the write end of
/// the control pipe and fd 4 the read end of the start pipe. The process prepares the program (spec, entrypoint,
/// compilation, <see cref="IEngine.CanHandle"/>), reports on fd 3, waits for the start byte on fd 4, runs the
/// program and exits with its exit code.
/// </summary>
public static class InstanceProcess
{
    /// <summary>The first argument that selects the instance role.</summary>
    public const string Flag = "--instance";

    /// <summary>The child's fd of the control pipe (child → shim).</summary>
    public const int ControlFd = 3;

    /// <summary>The child's fd of the start pipe (shim → child).</summary>
    public const int StartFd = 4;

    /// <summary>The child's fd of the compiled seccomp profile (a memory file), when the spec has one.</summary>
    public const int SeccompFd = 6;

    /// <summary>Builds the argv of an instance process. With <paramref name="containerdAddress"/>, the child may ask
    /// containerd (in <paramref name="namespace"/>) for the module in the container's image's wasm layers.</summary>
    public static IReadOnlyList<string> Arguments(string executable, string id, string bundle, string rootfs,
        string? @namespace = null, string? containerdAddress = null) =>
        string.IsNullOrEmpty(@namespace) || string.IsNullOrEmpty(containerdAddress)
            ? [executable, Flag, id, bundle, rootfs]
            : [executable, Flag, id, bundle, rootfs, @namespace, containerdAddress];

    /// <summary>Whether <paramref name="args"/> (without argv[0]) ask for the instance role.</summary>
    public static bool IsInstance(string[] args) => args.Length > 0 && args[0] == Flag;

    /// <summary>Runs the instance role; <paramref name="args"/> are <c>--instance id bundle rootfs</c>. Returns the
    /// process exit code.</summary>
    public static int Run<TEngine>(string[] args)
        where TEngine : IEngine, new()
    {
        ShimTrace.Mark("instance: main");
        using var control = new SafeFileHandle(ControlFd, ownsHandle: true);
        using var start = new SafeFileHandle(StartFd, ownsHandle: true);
        if (args.Length is not (4 or 6))
        {
            Console.Error.WriteLine($"usage: {Flag} <id> <bundle> <rootfs> [<namespace> <containerd address>]");
            return ExitCodes.InternalError;
        }
        var (id, bundle, rootfs) = (args[1], args[2], args[3]);
        // One connection to containerd for the image walk and the compiled-module cache, closed once the module is
        // loaded (the guest never needs it).
        using var image = args.Length == 6 ? new ImageModuleSource(id, args[4], args[5]) { ShareConnection = true } : null;

        var engine = new TEngine();
        (engine as IEngineWarmup)?.BeginWarmup();
        RuntimeContext ctx;
        SeccompFilter? seccomp;
        try
        {
            seccomp = InstanceSeccomp.Take();
            // With a setup plan, the native constructor already ran (namespaces, mounts, cgroup, identity), left
            // config.json open for us (the container's user may not reach the bundle) and the rootfs as our cwd.
            var spec = InstanceSetupFd.ReadSpec();
            var confined = spec is not null;
            if (spec is null)
            {
                // Started by hand without a plan (a benchmark's floor): nothing is confined.
                spec = Spec.Load(Path.Combine(bundle, "config.json"));
                ctx = RuntimeContext.FromSpec(id, rootfs, spec, image is null ? null : image.Resolve);
            }
            else
            {
                if (!InstanceConfinement.HasHelper)
                {
                    throw new ShimException(StatusCode.Internal, "instance setup: the constructor left no pivot helper");
                }
                using var root = RootfsPath.OpenRoot(".");
                ctx = RuntimeContext.FromSpec(id, rootfs, root, spec, image is null ? null : image.Resolve);
            }
            ShimTrace.Mark("instance: entrypoint resolved");
            engine.CanHandle(ctx);
            image?.Dispose();
            if (confined)
            {
                // Everything of the host the run needs is loaded: from here on the process sees the container only.
                ctx = ctx.InsideRootfs();
                InstanceConfinement.EnterRootfs();
                ShimTrace.Mark("instance: inside the rootfs");
            }
        }
        catch (ShimException e)
        {
            ControlChannel.ReportError(control, e.Code, e.Message);
            return ExitCodes.InternalError;
        }
        catch (Exception e)
        {
            ControlChannel.ReportError(control, StatusCode.Internal, $"{engine.Name}: preparing container {id}: {e.Message}");
            return ExitCodes.InternalError;
        }
        finally
        {
            image?.Dispose();
        }
        ControlChannel.ReportReady(control);
        ShimTrace.Mark("instance: ready");

        if (!WaitForStart(start))
        {
            // The shim closed the start pipe without starting us: the task was deleted before Start, or the shim died.
            return ExitCodes.InternalError;
        }

        ShimTrace.Mark("instance: start byte");
        if (!InstanceSeccomp.Install(seccomp))
        {
            return ExitCodes.InternalError;
        }
        try
        {
            return engine.RunWasi(ctx, Stdio.Inherited);
        }
        catch (Exception e)
        {
            // Never hidden: the container's stderr is where the user looks for why the program did not run.
            Console.Error.WriteLine($"{engine.Name}: internal error running {ctx.Entrypoint.Name}: {e}");
            return ExitCodes.InternalError;
        }
    }

    private static bool WaitForStart(SafeFileHandle start)
    {
        using var stream = new FileStream(start, FileAccess.Read, bufferSize: 0);
        Span<byte> go = stackalloc byte[1];
        try
        {
            return stream.Read(go) == 1;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
