using System.Net.Sockets;
using Containerd.Shimkit.Oci;
using Containerd.Shimkit.Processes;
using Ttrpc;

namespace Containerd.Shimkit;

/// <summary>
/// <c>start</c>: find or create the shim serving this container's group and print its address. A new shim is
/// this executable re-run without the action, in a session of its own, inheriting the bound socket as fd 3; the
/// socket already listens when <c>start</c> returns, so containerd's first connect cannot race the server.
/// </summary>
internal static class ShimStart
{
    public static int Run(ShimFlags flags)
    {
        var bundle = flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory();
        var address = SocketAddress.Compute(flags.Address, flags.Namespace, GroupingId(bundle, flags.Id));
        var path = SocketAddress.ToPath(address);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);

        for (var attempt = 0; ; attempt++)
        {
            if (SocketAddress.IsServing(path))
            {
                ShimLog.Debug($"reusing the shim at {address}");
                return Finish(bundle, address);
            }
            TryDelete(path);
            Socket listener;
            try
            {
                // 0600 from the moment it has its name: only root (containerd) may talk to the shim.
                listener = OwnerOnlySocket.Listen(path, 1024);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 5)
            {
                // Another container of the same group started its shim between our check and bind: use it.
                Thread.Sleep(20);
                continue;
            }
            try
            {
                SpawnServer(flags, bundle, listener);
            }
            catch
            {
                TryDelete(path);
                throw;
            }
            finally
            {
                // Close only our copy of the descriptor: the server holds the listener as fd 3.
                listener.SafeHandle.Dispose();
                GC.SuppressFinalize(listener);
            }
            return Finish(bundle, address);
        }
    }

    private static void SpawnServer(ShimFlags flags, string bundle, Socket listener)
    {
        var (path, argv0Args) = SelfCommand();
        var args = new List<string>(argv0Args);
        args.AddRange(flags.ServeArgs());
        // Not awaited: `start` exits now and the server is adopted by containerd (a subreaper) or init.
        var child = Reaper.Spawn(new ProcessStartSpec
        {
            Path = path,
            Args = args,
            WorkingDirectory = bundle,
            NewSession = true,
            Files = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [3] = listener.SafeHandle },
        });
        ShimLog.Debug($"started shim server pid {child.Pid}");
        ShimTrace.Mark($"start: spawned server {child.Pid}");
    }

    /// <summary>How to run this program again: the native executable, or <c>dotnet app.dll</c> under the JIT host.</summary>
    internal static (string Path, List<string> Args) SelfCommand()
    {
        var exe = Environment.ProcessPath ?? "/proc/self/exe";
        var cmdline = Environment.GetCommandLineArgs();
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet" && cmdline.Length > 0 && cmdline[0].EndsWith(".dll", StringComparison.Ordinal))
        {
            return (exe, [exe, cmdline[0]]);
        }
        return (exe, [exe]);
    }

    /// <summary>The pod's sandbox id when the container belongs to one, else the container id.</summary>
    internal static string GroupingId(string bundle, string id)
    {
        try
        {
            var spec = Spec.Load(Path.Combine(bundle, "config.json"));
            if (spec.Annotations?.TryGetValue(SocketAddress.SandboxIdAnnotation, out var sandbox) == true && sandbox.Length > 0)
            {
                return sandbox;
            }
        }
        catch (ShimException e)
        {
            ShimLog.Debug($"no grouping annotation: {e.Message}");
        }
        return id;
    }

    private static int Finish(string bundle, string address)
    {
        File.WriteAllText(Path.Combine(bundle, "address"), address);
        Console.Out.Write(address);
        Console.Out.Flush();
        ShimTrace.Mark("start: address printed");
        return 0;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
