namespace Containerd.Shimkit;

/// <summary>
/// The shim's logger. Inside a running shim it writes to the bundle's <c>log</c> FIFO, which containerd copies
/// into its own log; everywhere else (start, delete, instance processes, tests) it writes to stderr.
/// Lines use the logrus text format containerd's shims use: <c>time="…" level=info msg="…"</c>.
/// </summary>
public static class ShimLog
{
    private static readonly Lock Gate = new();
    private static TextWriter _sink = Console.Error;
    private static bool _debug;

    /// <summary>Whether debug lines are written (the shim's <c>-debug</c> flag).</summary>
    public static bool DebugEnabled => Volatile.Read(ref _debug);

    /// <summary>Logs at info level.</summary>
    public static void Info(string msg) => Write("info", msg, null);

    /// <summary>Logs at debug level; dropped unless debug logging is on.</summary>
    public static void Debug(string msg)
    {
        if (DebugEnabled)
        {
            Write("debug", msg, null);
        }
    }

    /// <summary>Logs at warning level.</summary>
    public static void Warn(string msg) => Write("warning", msg, null);

    /// <summary>Logs at error level, with the exception's message as the <c>error</c> field.</summary>
    public static void Error(string msg, Exception? ex = null) => Write("error", msg, ex);

    /// <summary>Sends log lines to <paramref name="sink"/> from now on, at debug level when <paramref name="debug"/>.
    /// The previous sink is not disposed.</summary>
    public static void Configure(TextWriter sink, bool debug)
    {
        lock (Gate)
        {
            _sink = sink;
            Volatile.Write(ref _debug, debug);
        }
    }

    private static void Write(string level, string msg, Exception? ex)
    {
        var line = LogLine.Format(DateTimeOffset.UtcNow, level, msg, ex?.Message);
        lock (Gate)
        {
            try
            {
                _sink.Write(line);
                _sink.Flush();
            }
            catch (IOException)
            {
                // Nobody reads the log any more (containerd went away): logging must never take the shim down.
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}
