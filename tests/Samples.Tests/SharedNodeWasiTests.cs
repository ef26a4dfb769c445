using System.Diagnostics;
using System.Net.Sockets;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Samples.Tests;

/// <summary>
/// Shared mode as a library (samples/nodewasi-shared, built from the packages): the sample's daemon, started by this
/// fixture on a socket of its own, runs every container of a private containerd; containerd starts the sample's
/// client shim for runtime type io.containerd.nodewasid.v1 and finds the daemon through its environment.
/// </summary>
public sealed class SharedNodeWasiFixture : IAsyncLifetime
{
    /// <summary>The runtime type of the sample's shared mode.</summary>
    public const string Runtime = "io.containerd.nodewasid.v1";

    private const string Binary = "containerd-shim-nodewasid-v1";

    private readonly string _dir = Directory.CreateTempSubdirectory("nodewasid-").FullName;
    private Process? _daemon;

    /// <summary>The manager socket of the daemon.</summary>
    public string ManagerSocket => Path.Combine(_dir, "manager.sock");

    /// <summary>The daemon's pid.</summary>
    public int DaemonPid => _daemon?.Id ?? 0;

    /// <summary>The running containerd.</summary>
    public ContainerdFixture Containerd { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var bin = Environment.GetEnvironmentVariable("SAMPLES_BIN_DIR");
        if (string.IsNullOrEmpty(bin) || !File.Exists(Path.Combine(bin, Binary)))
        {
            throw new InvalidOperationException($"SAMPLES_BIN_DIR must name the folder `make samples` installs {Binary} to");
        }
        bin = Path.GetFullPath(bin);
        var psi = new ProcessStartInfo(Path.Combine(bin, Binary)) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("daemon");
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(ManagerSocket);
        _daemon = Process.Start(psi)!;
        _daemon.BeginErrorReadLine();
        _daemon.BeginOutputReadLine();
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!UnixSockets.Answers(ManagerSocket))
        {
            if (_daemon.HasExited || DateTime.UtcNow > until)
            {
                throw new InvalidOperationException($"the sample daemon did not serve {ManagerSocket} (exited: {_daemon.HasExited})");
            }
            await Task.Delay(50);
        }
        Containerd = await ContainerdFixture.StartAsync(new ContainerdOptions
        {
            ShimBinDir = bin,
            Environment = new Dictionary<string, string> { ["CONTAINERD_NODEWASID_SOCKET"] = ManagerSocket },
        });
        await Containerd.ImportAsync((await TestImages.BuildDemoAsync()).TarPath);
    }

    public async Task DisposeAsync()
    {
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
        if (_daemon is { HasExited: false })
        {
            _daemon.Kill(entireProcessTree: true);
            await _daemon.WaitForExitAsync();
        }
        _daemon?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary><c>ctr run --rm --runtime io.containerd.nodewasid.v1 image id args...</c>.</summary>
    public Task<ProcessResult> RunAsync(string id, IEnumerable<string> args) =>
        Containerd.CtrAsync(new[] { "run", "--rm", "--runtime", Runtime, KnownImages.DemoName, id }.Concat(args), TimeSpan.FromSeconds(90));
}

/// <summary>
/// The shared-mode sample through containerd: output, exit codes and SIGKILL, and every container's program is a
/// child of the one daemon rather than of a shim per container.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Category", "Samples")]
public sealed class SharedNodeWasiTests(SharedNodeWasiFixture fx) : IClassFixture<SharedNodeWasiFixture>
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    public async Task Echo_and_exit_codes_come_back_through_the_daemon()
    {
        var echo = await fx.RunAsync(NodeWasiFixture.NewId("d-echo"), [Demo, "echo", "from the daemon"]);
        var exit = await fx.RunAsync(NodeWasiFixture.NewId("d-exit"), [Demo, "exit", "42"]);

        Assert.True(echo.Succeeded, echo.ToString());
        Assert.Equal("from the daemon\n", echo.Stdout);
        Assert.Equal(42, exit.ExitCode);
    }

    [Fact]
    public async Task Sigkill_ends_a_running_container_of_the_daemon_with_137()
    {
        var id = NodeWasiFixture.NewId("d-kill");
        var run = fx.RunAsync(id, [Demo, "daemon"]);
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id, starter: run);
            // The task's program is the daemon's child: no shim process stands between them.
            var parent = File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ')[1];
            Assert.Equal(fx.DaemonPid.ToString(System.Globalization.CultureInfo.InvariantCulture), parent);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            var result = await run.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(137, result.ExitCode);
            Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"process {pid} is still there");
        }
        finally
        {
            if (!run.IsCompleted)
            {
                await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
                await run.WaitAsync(TimeSpan.FromSeconds(60)).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            await fx.Containerd.CtrAsync("container", "rm", id);
        }
    }
}
