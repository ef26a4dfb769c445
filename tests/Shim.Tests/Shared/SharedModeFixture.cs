using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Containerd.Testing;
using ImageBuilder;
using Runwasi.Services.Sandbox.V1;
using Ttrpc;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// Shared mode end to end: a private containerd whose PATH has the installed client shim, and a
/// <c>containerd-wasmtimed</c> daemon of this fixture on a socket of its own (containerd's environment names it, so
/// the client shim containerd starts finds it). The daemon is killed and its folder removed at teardown.
/// </summary>
public class SharedModeFixture : IAsyncLifetime
{
    /// <summary>The runtime type of shared mode.</summary>
    public const string Runtime = "io.containerd.wasmtimed.v1";

    /// <summary>The image with the demo module and the test modules.</summary>
    public const string TestImageName = "localhost/runwasi-dotnet/shared-mode-tests:latest";

    /// <summary>A guest that spins in wasm code forever.</summary>
    public const string Spin = """(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))""";

    /// <summary>A guest that reads stdin to its end and copies it to stdout (fd_read, then fd_write).</summary>
    public const string CatStdin = """
        (module
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start") (local $n i32)
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 1024))
            (loop $more
              (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
              (local.set $n (i32.load (i32.const 16)))
              (if (i32.gt_u (local.get $n) (i32.const 0))
                (then
                  (i32.store (i32.const 32) (i32.const 64))
                  (i32.store (i32.const 36) (local.get $n))
                  (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 20)))
                  (br $more))))))
        """;

    /// <summary>A guest that spins until <c>memory.grow</c> of 32 MiB succeeds, then exits with 7.</summary>
    public const string GrowWhenAllowed = """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (loop $again
              (if (i32.ne (memory.grow (i32.const 512)) (i32.const -1))
                (then (call $exit (i32.const 7))))
              (br $again))))
        """;

    /// <summary>A guest of three memories and a table that grows each memory by 16 MiB, the table by a million
    /// elements and the first memory by one more page; exits with a bit for each of the first four that succeeded
    /// (1, 2, 4: memories; 8: the table) and 16 when the one-page grow failed.</summary>
    public const string ManyMemories = """
        (module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory $a (export "memory") 1) (memory $b 1) (memory $c 1)
          (table $t 1 funcref)
          (func (export "_start") (local $bits i32)
            (if (i32.ne (memory.grow $a (i32.const 256)) (i32.const -1)) (then (local.set $bits (i32.or (local.get $bits) (i32.const 1)))))
            (if (i32.ne (memory.grow $b (i32.const 256)) (i32.const -1)) (then (local.set $bits (i32.or (local.get $bits) (i32.const 2)))))
            (if (i32.ne (memory.grow $c (i32.const 256)) (i32.const -1)) (then (local.set $bits (i32.or (local.get $bits) (i32.const 4)))))
            (if (i32.ne (table.grow $t (ref.null func) (i32.const 1000000)) (i32.const -1)) (then (local.set $bits (i32.or (local.get $bits) (i32.const 8)))))
            (if (i32.eq (memory.grow $a (i32.const 1)) (i32.const -1)) (then (local.set $bits (i32.or (local.get $bits) (i32.const 16)))))
            (call $exit (local.get $bits))))
        """;

    /// <summary>A guest that polls 4,096 expired clocks (exits 1 unless that succeeds), then 4,097: it exits with the
    /// second call's errno, which is EINVAL (28) when the daemon bounds the subscriptions it copies.</summary>
    public const string PollMany = """
        (module
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 8)
          (func (export "_start")
            ;; All-zero subscriptions: relative realtime clocks with a timeout of 0, expired at once.
            (if (i32.ne (call $poll (i32.const 0) (i32.const 200000) (i32.const 4096) (i32.const 400000)) (i32.const 0))
              (then (call $exit (i32.const 1))))
            (call $exit (call $poll (i32.const 0) (i32.const 200000) (i32.const 4097) (i32.const 400000)))))
        """;

    private Process? _daemon;
    private StreamWriter? _daemonLog;

    /// <summary>The folder holding the daemon's socket, lock, sandbox sockets and log.</summary>
    public string DaemonDir { get; } = Directory.CreateTempSubdirectory("wtd-").FullName;

    /// <summary>The manager socket.</summary>
    public string ManagerSocket => Path.Combine(DaemonDir, "manager.sock");

    /// <summary>The daemon's stderr.</summary>
    public string DaemonLogPath => Path.Combine(DaemonDir, "daemon.log");

    /// <summary>Where the daemon puts sandbox sockets.</summary>
    public string SandboxSocketDir => Path.Combine(DaemonDir, "sandboxes");

    /// <summary>The daemon's compiled-module folder.</summary>
    public string CacheDir => Path.Combine(DaemonDir, "cache");

    /// <summary>The daemon's compile log: a line per real compilation.</summary>
    public string CompileLog => Path.Combine(DaemonDir, "compiles.log");

    /// <summary>Extra environment of the daemon (none here; the pooled fixture sets the pooling allocator's).</summary>
    protected virtual IReadOnlyDictionary<string, string> DaemonEnvironment { get; } = new Dictionary<string, string>();

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    /// <summary>Where the installed binaries are.</summary>
    public string BinDir { get; private set; } = "";

    /// <summary>The daemon's pid (0 when it is not running).</summary>
    public int DaemonPid => _daemon is { HasExited: false } p ? p.Id : 0;

    /// <inheritdoc/>
    public async Task InitializeAsync()
    {
        BinDir = await ShimBinary.DirAsync();
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = BinDir,
            Environment = new Dictionary<string, string> { ["CONTAINERD_WASMTIMED_SOCKET"] = ManagerSocket },
        });
        await StartDaemonAsync();
        var demo = await TestImages.BuildDemoAsync();
        await Containerd.ImportAsync(demo.TarPath);
        var wasm = await TestImages.EnsureDemoWasmAsync();
        await Containerd.ImportAsync(TestImages.Build("shared-mode-tests", TestImage(wasm)).TarPath);
    }

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
        await StopDaemonAsync(kill: true);
        Directory.Delete(DaemonDir, recursive: true);
    }

    /// <summary>Starts the daemon (again) and waits until its socket answers.</summary>
    public async Task StartDaemonAsync()
    {
        var psi = new ProcessStartInfo(Path.Combine(BinDir, "containerd-wasmtimed"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(ManagerSocket);
        psi.ArgumentList.Add("--debug");
        // The compiled-module folder and compile log are this fixture's, not the host's /var/cache.
        psi.Environment["CONTAINERD_SHIM_WASMTIME_CACHE"] = CacheDir;
        psi.Environment["CONTAINERD_SHIM_WASMTIME_COMPILE_LOG"] = CompileLog;
        foreach (var (name, value) in DaemonEnvironment)
        {
            psi.Environment[name] = value;
        }
        _daemonLog ??= new StreamWriter(DaemonLogPath, append: true) { AutoFlush = true };
        var daemon = Process.Start(psi)!;
        var log = _daemonLog;
        daemon.ErrorDataReceived += (_, e) => { if (e.Data is { } l) { lock (log) { log.WriteLine(l); } } };
        daemon.OutputDataReceived += (_, e) => { if (e.Data is { } l) { lock (log) { log.WriteLine(l); } } };
        daemon.BeginErrorReadLine();
        daemon.BeginOutputReadLine();
        _daemon = daemon;
        var watch = Stopwatch.StartNew();
        while (!UnixSockets.Answers(ManagerSocket))
        {
            if (daemon.HasExited || watch.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"containerd-wasmtimed did not come up:\n{File.ReadAllText(DaemonLogPath)}");
            }
            await Task.Delay(50);
        }
    }

    /// <summary>Stops the daemon: SIGKILL when <paramref name="kill"/>, else SIGTERM (then SIGKILL after 20 s).</summary>
    public async Task StopDaemonAsync(bool kill)
    {
        if (_daemon is not { } daemon)
        {
            return;
        }
        if (!daemon.HasExited)
        {
            if (kill)
            {
                daemon.Kill();
            }
            else
            {
                PosixSignal.Send(daemon.Id, 15);
            }
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await daemon.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                daemon.Kill();
                await daemon.WaitForExitAsync();
            }
        }
        daemon.Dispose();
        _daemon = null;
    }

    /// <summary>What the daemon holds now.</summary>
    public async Task<StatusResponse> StatusAsync()
    {
        await using var channel = new TtrpcChannel(ManagerSocket);
        var client = new Manager.ManagerClient(channel.CreateCallInvoker());
        return await client.StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
    }

    /// <summary>The daemon's log so far, for failure messages.</summary>
    public string DaemonLog()
    {
        try
        {
            using var stream = new FileStream(DaemonLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var text = new StreamReader(stream).ReadToEnd();
            return text.Length > 8000 ? text[^8000..] : text;
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    /// <summary><c>ctr run --rm --runtime io.containerd.wasmtimed.v1 [options] image id args...</c>.</summary>
    public Task<ProcessResult> RunAsync(string image, string id, IEnumerable<string> args, IEnumerable<string>? options = null,
        TimeSpan? timeout = null, CancellationToken ct = default) =>
        Containerd.CtrAsync(
            new[] { "run", "--rm", "--runtime", Runtime }.Concat(options ?? []).Concat([image, id]).Concat(args),
            timeout ?? TimeSpan.FromSeconds(90), ct);

    private static ImageDefinition TestImage(string demoWasm) => new()
    {
        Name = TestImageName,
        Platform = Platform.LinuxAmd64,
        Config = new ImageConfig { Entrypoint = ["/wasi-demo-app.wasm"], Env = ["PATH=/bin"] },
        Layers =
        [
            new FilesystemLayer(
            [
                LayerEntry.File("wasi-demo-app.wasm", demoWasm, Modes.Executable),
                LayerEntry.Bytes("trap.wat", Encoding.UTF8.GetBytes(TestModules.Trap)),
                LayerEntry.Bytes("env.wat", Encoding.UTF8.GetBytes(TestModules.PrintEnv)),
                LayerEntry.Bytes("spin.wat", Encoding.UTF8.GetBytes(Spin)),
                LayerEntry.Bytes("cat-stdin.wat", Encoding.UTF8.GetBytes(CatStdin)),
                LayerEntry.Bytes("grow.wat", Encoding.UTF8.GetBytes(GrowWhenAllowed)),
                LayerEntry.Bytes("poll-many.wat", Encoding.UTF8.GetBytes(PollMany)),
                LayerEntry.Bytes("many-memories.wat", Encoding.UTF8.GetBytes(ManyMemories)),
                LayerEntry.Bytes("readme.txt", "not a module\n"u8.ToArray()),
            ]),
        ],
    };
}

/// <summary>The shared-mode tests that share one daemon.</summary>
[CollectionDefinition(Name)]
public sealed class SharedModeCollection : ICollectionFixture<SharedModeFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "shared mode";
}

internal static class PosixSignal
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public static void Send(int pid, int signal) => Kill(pid, signal);
}
