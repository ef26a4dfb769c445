namespace Containerd.Shimkit;

/// <summary>The entry point of every shim binary: implements containerd's runtime v2 shim contract.</summary>
public static class ShimMain
{
    /// <summary>
    /// Runs the shim: <c>-v</c>, <c>-info</c>, <c>start</c>, <c>delete</c>, or (no action) the long-lived ttrpc
    /// server. Returns the process exit code.
    /// </summary>
    public static int Run(ShimInfo info, IInstanceFactory factory, string[] args)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(args);
        if (Prelude(info, args, out var flags) is { } exit)
        {
            return exit;
        }
        ShimTrace.Mark($"main {(flags.Action.Length == 0 ? "serve" : flags.Action)}");
        try
        {
            return flags.Action switch
            {
                "start" => ShimStart.Run(flags),
                "delete" => ShimDelete.Run(flags, factory as IOrphanCleanup),
                "" => ShimServer.Run(info, factory, flags),
                _ => Unknown(flags.Action),
            };
        }
        catch (Exception e)
        {
            ShimLog.Error($"{(flags.Action.Length == 0 ? "serve" : flags.Action)} failed", e);
            return 1;
        }
    }

    /// <summary>
    /// Runs a shim binary whose <c>start</c> and <c>delete</c> are <paramref name="actions"/>' (a client of a daemon
    /// that serves the Task API): <c>-v</c>, <c>-info</c>, <c>start</c> (writes the bundle's <c>address</c> file and
    /// prints the address) and <c>delete</c> (prints the DeleteResponse). It never serves, so no action is an error.
    /// </summary>
    public static int Run(ShimInfo info, IShimActions actions, string[] args)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(actions);
        ArgumentNullException.ThrowIfNull(args);
        if (Prelude(info, args, out var flags) is { } exit)
        {
            return exit;
        }
        ShimTrace.Mark($"main {flags.Action}");
        var bundle = flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory();
        var invocation = new ShimInvocation(flags.Namespace, flags.Address,
            Environment.GetEnvironmentVariable("TTRPC_ADDRESS") is { Length: > 0 } ttrpc ? ttrpc : flags.Address + ".ttrpc",
            flags.Id, bundle, flags.Debug);
        try
        {
            switch (flags.Action)
            {
                case "start":
                    var address = actions.Start(invocation);
                    File.WriteAllText(Path.Combine(bundle, "address"), address);
                    Console.Out.Write(address);
                    Console.Out.Flush();
                    return 0;
                case "delete":
                    var response = actions.Delete(invocation);
                    using (var stdout = Console.OpenStandardOutput())
                    {
                        Google.Protobuf.MessageExtensions.WriteTo(response, stdout);
                        stdout.Flush();
                    }
                    return 0;
                case "":
                    Console.Error.WriteLine("this shim does not serve the Task API itself: run it with start or delete");
                    return 2;
                default:
                    return Unknown(flags.Action);
            }
        }
        catch (ShimException e)
        {
            // The message is what containerd (and so ctr or the kubelet) shows: no stack, no prefix noise.
            Console.Error.WriteLine(e.Message);
            return 1;
        }
        catch (Exception e)
        {
            ShimLog.Error($"{(flags.Action.Length == 0 ? "serve" : flags.Action)} failed", e);
            return 1;
        }
    }

    /// <summary>What every shim binary does first: parses the flags, answers <c>-v</c> and <c>-info</c> and sets up
    /// logging. Returns the exit code when the invocation is already answered, null when an action must run.</summary>
    private static int? Prelude(ShimInfo info, string[] args, out ShimFlags flags)
    {
        try
        {
            flags = ShimFlags.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            flags = null!;
            return 2;
        }
        if (flags.Version)
        {
            Console.Out.Write(VersionText(info));
            return 0;
        }
        if (flags.Info)
        {
            Console.Out.Write(InfoText(info));
            return 0;
        }
        ShimLog.Configure(flags.Action == "start" ? StartLog(flags) : Console.Error, flags.Debug);
        return null;
    }

    /// <summary>
    /// Where <c>start</c> logs. containerd reads everything <c>start</c> writes to stdout and stderr as the shim's
    /// address (Go's CombinedOutput), so a log line there breaks the start (seen with containerd 2.x at debug
    /// level: "unsupported protocol: time=…"). Its lines go to the bundle's log FIFO, which containerd opens before
    /// running <c>start</c>, or nowhere. A failing <c>start</c> still prints its error on stderr (see Run).
    /// </summary>
    private static TextWriter StartLog(ShimFlags flags) =>
        ShimServer.OpenLog(flags.Bundle.Length > 0 ? flags.Bundle : Directory.GetCurrentDirectory()) ?? TextWriter.Null;

    /// <summary>The <c>-v</c> text, as containerd's shims print it.</summary>
    internal static string VersionText(ShimInfo info) =>
        $"{BinaryName()}:\n  Runtime: {info.RuntimeName}\n  Version: {info.Version}\n  Revision: {info.Revision}\n";

    /// <summary>The <c>-info</c> text: a plain description of the runtime.</summary>
    internal static string InfoText(ShimInfo info) =>
        $"Name: {info.RuntimeName}\nVersion: {info.Version}\nRevision: {info.Revision}\nShim API: containerd.task.v2 over ttrpc\n";

    private static string BinaryName()
    {
        var path = Environment.ProcessPath;
        var name = path is null ? "" : Path.GetFileName(path);
        return name is "" or "dotnet" ? Environment.GetCommandLineArgs().Select(Path.GetFileNameWithoutExtension).FirstOrDefault() ?? "shim" : name;
    }

    private static int Unknown(string action)
    {
        Console.Error.WriteLine($"unknown action {action}: expected start, delete, or none to serve");
        return 2;
    }
}
