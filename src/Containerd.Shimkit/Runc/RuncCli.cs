using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Containerd.Shimkit.Processes;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shimkit.Runc;

/// <summary>
/// The runc command line for one container: <c>runc --root &lt;root&gt; --log &lt;bundle&gt;/log.json --log-format json
/// &lt;command&gt;</c>. Every invocation is spawned and reaped through the <see cref="Reaper"/> (the shim is a subreaper,
/// so nothing else may wait for children). A failed invocation throws <see cref="ShimException"/> carrying runc's
/// own error message, read back from the JSON log, rather than just its exit status.
/// </summary>
internal sealed class RuncCli
{
    /// <summary>The log runc writes in the bundle (the name containerd's runc shim uses too).</summary>
    public const string LogFileName = "log.json";

    // Bounds of what is read back from runc's files: a pid, one stats document, the end of the log.
    private const int MaxPidFileBytes = 64;
    private const int MaxStatsBytes = 4 << 20;
    private const int MaxLogBytes = 64 << 10;
    private const int MaxLogMessages = 8;
    private const int MaxLogMessageLength = 512;

    private readonly string _binary;
    private readonly string _root;
    private readonly string _log;

    /// <summary>Creates the wrapper.</summary>
    /// <param name="binary">The runc executable.</param>
    /// <param name="root">runc's state root (<c>--root</c>): one per containerd namespace.</param>
    /// <param name="bundle">The container's bundle, where the log goes.</param>
    public RuncCli(string binary, string root, string bundle)
    {
        _binary = binary;
        _root = root;
        _log = Path.Combine(bundle, LogFileName);
    }

    /// <summary>The state root passed as <c>--root</c>.</summary>
    public string Root => _root;

    /// <summary>
    /// <c>runc create --bundle &lt;bundle&gt; --pid-file &lt;pidFile&gt; &lt;id&gt;</c> with the container's stdio as runc's
    /// own fds 0-2 (runc hands them to the container's init when there is no terminal). Returns the init pid.
    /// </summary>
    public async Task<int> CreateAsync(string id, string bundle, string pidFile, SafeHandle? stdin, SafeHandle? stdout, SafeHandle? stderr)
    {
        // A stream containerd did not ask for is /dev/null, as with containerd's runc shim: otherwise the container
        // would inherit what runc itself has there (its stderr is the runc log file).
        using var devNull = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite);
        var files = new Dictionary<int, SafeHandle> { [0] = stdin ?? devNull, [1] = stdout ?? devNull, [2] = stderr ?? devNull };
        await RunAsync("create", ["create", "--bundle", bundle, "--pid-file", pidFile, id], files, bundle).ConfigureAwait(false);
        string text;
        try
        {
            text = BoundedRead.Text(pidFile, MaxPidFileBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.Internal, $"runc create {id}: reading the init pid from {pidFile}: {e.Message}", e);
        }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            throw new ShimException(StatusCode.Internal, $"runc create {id}: {pidFile} holds \"{UntrustedText.Excerpt(text.Trim())}\", not a pid");
        }
        return pid;
    }

    /// <summary><c>runc start &lt;id&gt;</c>: the init process execs the container's program.</summary>
    public Task StartAsync(string id) => RunAsync("start", ["start", id]);

    /// <summary><c>runc kill [--all] &lt;id&gt; &lt;signal&gt;</c>.</summary>
    public Task KillAsync(string id, int signal, bool all) =>
        RunAsync("kill", all
            ? ["kill", "--all", id, signal.ToString(CultureInfo.InvariantCulture)]
            : ["kill", id, signal.ToString(CultureInfo.InvariantCulture)]);

    /// <summary><c>runc delete --force &lt;id&gt;</c>: kills what is left, removes the state and the cgroup.</summary>
    public Task DeleteAsync(string id) => RunAsync("delete", ["delete", "--force", id]);

    /// <summary><c>runc update --resources &lt;file&gt; &lt;id&gt;</c> with an OCI <c>LinuxResources</c> JSON document.</summary>
    public Task UpdateAsync(string id, string resourcesFile) => RunAsync("update", ["update", "--resources", resourcesFile, id]);

    /// <summary><c>runc events --stats &lt;id&gt;</c>: one JSON document with the container's statistics.</summary>
    public async Task<string> StatsAsync(string id, string outputFile)
    {
        using (var output = OpenForAppend(outputFile, truncate: true))
        {
            await RunAsync("events", ["events", "--stats", id], new Dictionary<int, SafeHandle> { [1] = output }).ConfigureAwait(false);
        }
        try
        {
            return BoundedRead.Text(outputFile, MaxStatsBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ShimException(StatusCode.Internal, $"runc events --stats {id}: reading {outputFile}: {e.Message}", e);
        }
    }

    private async Task RunAsync(string command, IReadOnlyList<string> args, Dictionary<int, SafeHandle>? files = null, string? workingDirectory = null)
    {
        var start = LogLength();
        SafeFileHandle? stderr = null;
        ChildProcess child;
        try
        {
            files ??= [];
            if (!files.ContainsKey(2))
            {
                // What runc prints before its logger is set up (a bad flag, an unusable root) still ends up in the log.
                stderr = OpenForAppend(_log, truncate: false);
                files[2] = stderr;
            }
            child = Reaper.Spawn(new ProcessStartSpec
            {
                Path = _binary,
                Args = [_binary, "--root", _root, "--log", _log, "--log-format", "json", .. args],
                WorkingDirectory = workingDirectory,
                Files = files,
            });
        }
        catch (ShimException e) when (e.Code == StatusCode.NotFound)
        {
            throw new ShimException(StatusCode.FailedPrecondition, $"runc {command}: {_binary} not found ({e.Message})", e);
        }
        finally
        {
            stderr?.Dispose();
        }
        var status = await child.Exited.ConfigureAwait(false);
        if (status.ExitCode != 0)
        {
            var message = ReadErrors(start);
            throw new ShimException(StatusCode.Unknown,
                message.Length > 0 ? message : $"runc {command} exited with status {status.ExitCode} (nothing in {_log})");
        }
    }

    private long LogLength()
    {
        try
        {
            return new FileInfo(_log).Exists ? new FileInfo(_log).Length : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>The error messages runc logged since <paramref name="offset"/>, in order, without repeats.</summary>
    private string ReadErrors(long offset)
    {
        string text;
        try
        {
            // runc's messages quote the container's own strings (paths, arguments), and its init process can fill
            // the log: only the newest entries are read, and each message goes into the error made safe.
            text = BoundedRead.Tail(_log, offset, MaxLogBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
        return string.Join("; ", ParseErrors(text).Take(MaxLogMessages).Select(m => UntrustedText.Excerpt(m, MaxLogMessageLength)));
    }

    /// <summary>
    /// The messages of error-level entries in runc's JSON log, and any line that is not JSON (what runc printed on
    /// stderr), each once: runc logs its fatal error and prints it too.
    /// </summary>
    public static IReadOnlyList<string> ParseErrors(string log)
    {
        var messages = new List<string>();
        foreach (var raw in log.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0)
            {
                continue;
            }
            string? message = line;
            if (line.StartsWith('{'))
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    var level = doc.RootElement.TryGetProperty("level", out var l) ? l.GetString() : null;
                    message = level is "error" or "fatal" or "panic" && doc.RootElement.TryGetProperty("msg", out var m) ? m.GetString() : null;
                }
                catch (JsonException)
                {
                    // Not a log entry: keep the line as runc printed it.
                }
            }
            if (!string.IsNullOrEmpty(message) && !messages.Contains(message))
            {
                messages.Add(message);
            }
        }
        return messages;
    }

    private static SafeFileHandle OpenForAppend(string path, bool truncate)
    {
        // O_APPEND: runc appends to the same file through its own descriptor; a plain offset would overwrite its entries.
        var flags = Libc.O_WRONLY | Libc.O_CREAT | Libc.O_CLOEXEC | (truncate ? Libc.O_TRUNC : Libc.O_APPEND);
        var fd = Libc.Open(path, flags, 0x180 /* 0600 */);
        if (fd < 0)
        {
            throw new ShimException(StatusCode.Internal, $"opening {path}: {Libc.StrError(Marshal.GetLastPInvokeError())}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
