using System.Diagnostics;
using System.Security.Cryptography;
using Xunit;

namespace Containerd.Testing;

/// <summary>
/// A private containerd for tests, benchmarks and demos: its own root, state and sockets under a temporary folder,
/// a binary from the cached Debian package of the chosen release line, and a teardown that removes every task,
/// container, mount, shim and folder it created, even after a failed test.
/// </summary>
/// <remarks>
/// Use it as an xunit class or collection fixture (it is an <see cref="IAsyncLifetime"/>), or outside xunit with
/// <see cref="StartAsync(ContainerdOptions?, CancellationToken)"/> and <see cref="DisposeAsync()"/>.
/// Derive from it to pass different <see cref="ContainerdOptions"/> to a fixture xunit constructs.
/// </remarks>
public partial class ContainerdFixture : IAsyncLifetime, IAsyncDisposable
{
    private readonly object _logLock = new();
    private Process? _containerd;
    private StreamWriter? _log;
    private int _disposed;

    /// <summary>Creates a fixture with options from the environment (CONTAINERD_VERSION, SHIM_BIN_DIR).</summary>
    public ContainerdFixture() : this(new ContainerdOptions())
    {
    }

    /// <summary>Creates a fixture; nothing starts until <see cref="InitializeAsync"/> or <see cref="StartAsync(ContainerdOptions?, CancellationToken)"/>.</summary>
    /// <param name="options">What to start.</param>
    public ContainerdFixture(ContainerdOptions options)
    {
        Options = options with { Version = ContainerdOptions.NormalizeVersion(options.Version) };
        Namespace = options.Namespace ?? "t-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        WorkDir = Path.Combine(options.TempRoot, "ctrd-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
    }

    // Adopts the folder of an instance whose test process died, so the ordinary teardown can clean it.
    private ContainerdFixture(string staleWorkDir)
    {
        Options = new ContainerdOptions { Version = "1.6" };
        Namespace = "t-stale";
        WorkDir = staleWorkDir;
    }

    /// <summary>
    /// Tears down what earlier runs left in <paramref name="tempRoot"/> when their test process was killed before
    /// teardown could run: folders named ctrd-* whose containerd is gone and that have been idle for
    /// <paramref name="idleFor"/>. Starting a fixture does this for the default temp root.
    /// </summary>
    /// <param name="tempRoot">Where fixture folders live (default /tmp).</param>
    /// <param name="idleFor">How long a folder must have been untouched (default 10 minutes).</param>
    /// <returns>The folders that were cleaned.</returns>
    public static async Task<IReadOnlyList<string>> ReapStaleAsync(string tempRoot = "/tmp", TimeSpan? idleFor = null)
    {
        var reaped = new List<string>();
        var cutoff = DateTime.UtcNow - (idleFor ?? TimeSpan.FromMinutes(10));
        foreach (var dir in Directory.EnumerateDirectories(tempRoot, "ctrd-*"))
        {
            var touched = new[] { dir, Path.Combine(dir, "containerd.log"), Path.Combine(dir, "config.toml") }
                .Select(p => File.Exists(p) || Directory.Exists(p) ? File.GetLastWriteTimeUtc(p) : DateTime.MinValue)
                .Max();
            if (touched > cutoff || ContainerdRunsFrom(dir))
            {
                continue;
            }
            var stale = new ContainerdFixture(dir);
            await stale.DisposeAsync().ConfigureAwait(false);
            reaped.Add(dir);
        }
        return reaped;
    }

    private static bool ContainerdRunsFrom(string dir)
    {
        var config = Path.Combine(dir, "config.toml");
        return HostScanner.FindProcesses(dir, null).Any(p => p.Description.Contains("--config " + config, StringComparison.Ordinal));
    }

    /// <summary>Starts a private containerd and returns it once its socket answers.</summary>
    /// <param name="options">What to start; null takes the defaults from the environment.</param>
    /// <param name="cancellationToken">Cancels the start (the partial instance is torn down).</param>
    /// <returns>The running fixture; dispose it to tear everything down.</returns>
    /// <exception cref="ContainerdStartException">containerd exited or did not answer in time.</exception>
    public static async Task<ContainerdFixture> StartAsync(ContainerdOptions? options = null, CancellationToken cancellationToken = default)
    {
        var fixture = new ContainerdFixture(options ?? new ContainerdOptions());
        try
        {
            await fixture.StartCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await fixture.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return fixture;
    }

    /// <summary>The options this instance was started with.</summary>
    public ContainerdOptions Options { get; }

    /// <summary>The release line: "1.6", "1.7" or "2".</summary>
    public string Version => Options.Version;

    /// <summary>What <c>containerd --version</c> printed, e.g. "containerd github.com/containerd/containerd 1.6.20~ds1 …".</summary>
    public string BinaryVersion { get; private set; } = "";

    /// <summary>The temporary folder holding everything this instance writes.</summary>
    public string WorkDir { get; }

    /// <summary>containerd's root folder (content, snapshots, metadata).</summary>
    public string RootDir => Path.Combine(WorkDir, "root");

    /// <summary>containerd's state folder (task bundles, runtime state).</summary>
    public string StateDir => Path.Combine(WorkDir, "state");

    /// <summary>The gRPC socket path.</summary>
    public string Address => Path.Combine(WorkDir, "containerd.sock");

    /// <summary>The ttrpc socket path (the gRPC address plus ".ttrpc", as containerd derives it).</summary>
    public string TtrpcAddress => Address + ".ttrpc";

    /// <summary>The namespace <see cref="CtrAsync(string[])"/> uses: unique per fixture unless the options set one.</summary>
    public string Namespace { get; }

    /// <summary>The generated config.toml.</summary>
    public string ConfigPath => Path.Combine(WorkDir, "config.toml");

    /// <summary>containerd's stdout and stderr.</summary>
    public string LogPath => Path.Combine(WorkDir, "containerd.log");

    /// <summary>The folder holding the containerd, ctr and containerd-shim-runc-v2 binaries in use.</summary>
    public string BinDir { get; private set; } = "";

    /// <summary>The ctr binary matching the running containerd.</summary>
    public string CtrPath => Path.Combine(BinDir, "ctr");

    /// <summary>The PATH containerd runs with (and so the one it resolves shim binaries on).</summary>
    public string ContainerdPath { get; private set; } = "";

    /// <summary>The containerd process id, or 0 when it is not running.</summary>
    public int Pid => _containerd is { HasExited: false } p ? p.Id : 0;

    /// <inheritdoc />
    public Task InitializeAsync() => StartCoreAsync(CancellationToken.None);

    /// <summary>Runs ctr against this instance (address and namespace set), returning whatever happened.</summary>
    /// <param name="args">ctr arguments, e.g. "images", "ls".</param>
    /// <returns>The exit code and output.</returns>
    public Task<ProcessResult> CtrAsync(params string[] args) => CtrAsync(args, null, CancellationToken.None);

    /// <summary>Runs ctr against this instance (address and namespace set), returning whatever happened.</summary>
    /// <param name="args">ctr arguments.</param>
    /// <param name="timeout">Kills ctr after this long (default 2 minutes).</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>The exit code and output.</returns>
    public Task<ProcessResult> CtrAsync(IEnumerable<string> args, TimeSpan? timeout, CancellationToken cancellationToken = default) =>
        ProcessRunner.RunAsync(
            CtrPath,
            new[] { "--address", Address, "--namespace", Namespace }.Concat(WithFifoDir(args.ToList())),
            new Dictionary<string, string> { ["PATH"] = ContainerdPath },
            timeout,
            cancellationToken);

    /// <summary>The folder ctr creates task stdio fifos in (ctr's default, /run/containerd/fifo, is shared and never cleaned).</summary>
    public string FifoDir => Path.Combine(WorkDir, "fifo");

    // ctr leaves the fifos of detached tasks behind; pointing them into the work dir lets teardown remove them.
    private List<string> WithFifoDir(List<string> args)
    {
        if (args.Contains("--fifo-dir"))
        {
            return args;
        }
        var at = args switch
        {
            ["run", ..] => 1,
            ["tasks" or "task" or "t", "start" or "exec", ..] => 2,
            _ => -1,
        };
        if (at > 0)
        {
            args.InsertRange(at, ["--fifo-dir", FifoDir]);
        }
        return args;
    }

    /// <summary>Runs ctr and returns its stdout, throwing with the full output and containerd's log tail on failure.</summary>
    /// <param name="args">ctr arguments.</param>
    /// <returns>ctr's stdout.</returns>
    /// <exception cref="CtrCommandException">ctr exited non-zero.</exception>
    public Task<string> RunCtrAsync(params string[] args) => RunCtrAsync(args, null, CancellationToken.None);

    /// <summary>Runs ctr and returns its stdout, throwing with the full output and containerd's log tail on failure.</summary>
    /// <param name="args">ctr arguments.</param>
    /// <param name="timeout">Kills ctr after this long (default 2 minutes).</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>ctr's stdout.</returns>
    /// <exception cref="CtrCommandException">ctr exited non-zero.</exception>
    public async Task<string> RunCtrAsync(IReadOnlyList<string> args, TimeSpan? timeout, CancellationToken cancellationToken = default)
    {
        var result = await CtrAsync(args, timeout, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new CtrCommandException(args, result, LogTail());
        }
        return result.Stdout;
    }

    /// <summary>The pid and status (RUNNING, STOPPED, ...) <c>ctr task ls</c> shows for task <paramref name="id"/>, or null when it has none.</summary>
    /// <param name="id">The container id.</param>
    /// <returns>The task's pid and status.</returns>
    public async Task<(int Pid, string Status)?> TaskAsync(string id)
    {
        var fields = (await RunCtrAsync("task", "ls").ConfigureAwait(false)).Split('\n')
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(f => f.Length >= 3 && f[0] == id);
        return fields is null ? null : (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture), fields[2]);
    }

    /// <summary>Waits until task <paramref name="id"/> is RUNNING and returns its pid.</summary>
    /// <param name="id">The container id.</param>
    /// <param name="timeout">How long to wait (default 60 s).</param>
    /// <param name="starter">The command that runs the task (a detached <c>ctr run</c>), if any: its end before the
    /// task ran fails the wait at once, with its output.</param>
    /// <returns>The task's pid.</returns>
    /// <exception cref="TimeoutException">The task was not RUNNING in time.</exception>
    /// <exception cref="InvalidOperationException">The starter ended first.</exception>
    public async Task<int> WaitForRunningPidAsync(string id, TimeSpan? timeout = null, Task<ProcessResult>? starter = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < until)
        {
            if (starter is { IsCompleted: true })
            {
                throw new InvalidOperationException($"the command running {id} ended before the task ran: {await starter.ConfigureAwait(false)}");
            }
            if (await TaskAsync(id).ConfigureAwait(false) is { Status: "RUNNING", Pid: > 0 } task)
            {
                return task.Pid;
            }
            await Task.Delay(100).ConfigureAwait(false);
        }
        throw new TimeoutException($"task {id} was not RUNNING within {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0} s");
    }

    /// <summary>Imports an image tarball (OCI layout or docker save) into this instance's namespace.</summary>
    /// <param name="tarPath">The tarball.</param>
    /// <param name="allPlatforms">Import every platform in the index (needed for wasm images on a linux host).</param>
    /// <param name="cancellationToken">Cancels the import.</param>
    /// <returns>ctr's output (it names the imported images).</returns>
    /// <exception cref="CtrCommandException">The import failed.</exception>
    /// <exception cref="FileNotFoundException">The tarball does not exist.</exception>
    public Task<string> ImportAsync(string tarPath, bool allPlatforms = false, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(tarPath))
        {
            throw new FileNotFoundException("image tarball not found", tarPath);
        }
        var args = new List<string> { "images", "import" };
        if (allPlatforms)
        {
            args.Add("--all-platforms");
        }
        args.Add(tarPath);
        return RunCtrAsync(args, TimeSpan.FromMinutes(5), cancellationToken);
    }

    /// <summary>The last lines of containerd's log, for failure messages.</summary>
    /// <param name="lines">How many lines.</param>
    /// <returns>The lines, or a note when there is no log.</returns>
    public string LogTail(int lines = 40)
    {
        try
        {
            lock (_logLock)
            {
                _log?.Flush();
            }
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines + 1));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"(no containerd log at {LogPath}: {e.Message})";
        }
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        if (_containerd is not null)
        {
            throw new InvalidOperationException("this containerd is already started");
        }
        BinDir = await ContainerdBinaries.GetBinDirAsync(Version, cancellationToken).ConfigureAwait(false);
        await ReapStaleOnceAsync(Options.TempRoot).ConfigureAwait(false);
        Directory.CreateDirectory(WorkDir);
        Directory.CreateDirectory(RootDir);
        Directory.CreateDirectory(StateDir);
        // CRI reads CNI network configs from here (empty unless a test writes one): never the host's /etc/cni.
        Directory.CreateDirectory(Path.Combine(WorkDir, "cni", "net.d"));
        await File.WriteAllTextAsync(
            ConfigPath, ContainerdConfig.Render(Options, RootDir, StateDir, Address, WorkDir), cancellationToken).ConfigureAwait(false);
        if (Options.EnableCri && Options.CniBridge)
        {
            await WriteCniBridgeConfigAsync(cancellationToken).ConfigureAwait(false);
        }
        if (Options.BeforeStart is { } beforeStart)
        {
            await beforeStart(this, cancellationToken).ConfigureAwait(false);
        }

        var path = new List<string>();
        if (Directory.Exists(NodeBinDir))
        {
            path.Add(NodeBinDir);
        }
        if (Options.ShimBinDir is { } shims)
        {
            path.Add(Path.GetFullPath(shims));
        }
        path.Add(BinDir);
        path.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries));
        // runc is in /usr/sbin, which a non-login PATH may lack.
        path.AddRange(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]);
        ContainerdPath = string.Join(':', path.Distinct());

        var containerd = Path.Combine(BinDir, "containerd");
        var version = await ProcessRunner.RunAsync(containerd, ["--version"], cancellationToken: cancellationToken).ConfigureAwait(false);
        BinaryVersion = version.Stdout.Trim();

        _log = new StreamWriter(new FileStream(LogPath, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
            AutoFlush = true,
        };
        var psi = new ProcessStartInfo(containerd)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = WorkDir,
        };
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(ConfigPath);
        psi.Environment["PATH"] = ContainerdPath;
        foreach (var (k, v) in Options.Environment)
        {
            psi.Environment[k] = v;
        }
        var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => AppendLog(e.Data);
        process.ErrorDataReceived += (_, e) => AppendLog(e.Data);
        process.Start();
        _containerd = process;
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        RegisterExitCleanup();

        await WaitUntilServingAsync(cancellationToken).ConfigureAwait(false);
    }

    private static int _reaped;

    private static async Task ReapStaleOnceAsync(string tempRoot)
    {
        // Once per test process is enough: stale folders come from processes that died before this one started.
        if (Interlocked.Exchange(ref _reaped, 1) == 0)
        {
            try
            {
                await ReapStaleAsync(tempRoot).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Someone else's folder, or one vanishing while we looked: not this fixture's problem.
            }
        }
    }

    private async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        ProcessResult? last = null;
        while (deadline.Elapsed < Options.StartTimeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_containerd!.HasExited)
            {
                throw new ContainerdStartException(
                    $"containerd {Version} exited with code {_containerd.ExitCode} while starting\n--- log (tail) ---\n{LogTail()}");
            }
            if (File.Exists(Address))
            {
                try
                {
                    last = await CtrAsync(["version"], TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
                    if (last.Succeeded)
                    {
                        return;
                    }
                }
                catch (TimeoutException)
                {
                    // containerd is still loading plugins; ask again.
                }
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
        throw new ContainerdStartException(
            $"containerd {Version} did not answer on {Address} within {Options.StartTimeout}\n" +
            $"last ctr version: {last?.ToString() ?? "(socket never appeared)"}\n--- log (tail) ---\n{LogTail()}");
    }

    private void AppendLog(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_logLock)
        {
            try
            {
                _log?.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output that arrives after teardown closed the log.
            }
        }
    }
}
