using Containerd.Testing;
using Cri.Api.V1;
using ImageBuilder;

namespace Cri.Tests;

/// <summary>
/// A Kubernetes node without kubelet: a private containerd with its CRI plugin on, whose runtime handler <c>wasmtime</c>
/// comes from the config the node installer (tools/NodeInstaller) produced and whose shim the installer copied into
/// <c>&lt;WorkDir&gt;/bin</c>, first on containerd's PATH; the pause, busybox and demo images imported into CRI's
/// namespace; and a CRI client. Pods get a CNI bridge network of their own, or the host's.
/// </summary>
internal sealed class CriNode : IAsyncDisposable
{
    /// <summary>containerd's namespace for everything CRI creates.</summary>
    public const string CriNamespace = "k8s.io";

    /// <summary>The handler the installer registers.</summary>
    public const string WasmHandler = "wasmtime";

    /// <summary>The shared-mode handler a node started with <c>shared: true</c> has (runtime io.containerd.wasmtimed.v1).</summary>
    public const string SharedHandler = "wasmtimed";

    private System.Diagnostics.Process? _daemon;
    private string? _daemonDir;

    private readonly List<string> _networkNamespaces = [];

    private CriNode(ContainerdFixture containerd, string installerOutput)
    {
        Containerd = containerd;
        InstallerOutput = installerOutput;
        Cri = new CriClient(containerd.Address);
    }

    public ContainerdFixture Containerd { get; }

    public CriClient Cri { get; }

    /// <summary>What the installer printed when it set the node up.</summary>
    public string InstallerOutput { get; }

    /// <summary>The installed shim, as containerd runs it.</summary>
    public string ShimPath => Path.Combine(Containerd.NodeBinDir, ShimBinary.Name);

    public static async Task<CriNode> StartAsync(bool cni, string? version = null, bool shared = false)
    {
        var shimDir = await ShimBinary.DirAsync();
        var installerOutput = "";
        // Shared mode: a containerd-wasmtimed of this node on a socket of its own, named in containerd's environment.
        var daemonDir = shared ? Directory.CreateTempSubdirectory("crid-").FullName : null;
        var options = new ContainerdOptions
        {
            EnableCri = true,
            CniBridge = cni,
            // The shim reaches containerd's PATH only through the installer's bin dir, as on a node.
            ShimBinDir = null,
            SandboxImage = KnownImages.PauseName,
            BeforeStart = async (fixture, ct) =>
            {
                installerOutput = await RunInstallerAsync(fixture, shimDir, ct);
                if (shared)
                {
                    File.Copy(Path.Combine(shimDir, "containerd-shim-wasmtimed-v1"), Path.Combine(fixture.NodeBinDir, "containerd-shim-wasmtimed-v1"), overwrite: true);
                }
            },
            CriRuntimes = shared ? new Dictionary<string, string> { [SharedHandler] = "io.containerd.wasmtimed.v1" } : new Dictionary<string, string>(),
            Environment = daemonDir is null ? new Dictionary<string, string>()
                : new Dictionary<string, string> { ["CONTAINERD_WASMTIMED_SOCKET"] = Path.Combine(daemonDir, "manager.sock") },
        };
        if (version is not null)
        {
            options = options with { Version = version };
        }
        System.Diagnostics.Process? daemon = null;
        if (daemonDir is not null)
        {
            daemon = StartDaemon(shimDir, daemonDir);
        }
        ContainerdFixture containerd;
        try
        {
            containerd = await ContainerdFixture.StartAsync(options);
        }
        catch
        {
            StopDaemon(daemon, daemonDir);
            throw;
        }
        var node = new CriNode(containerd, installerOutput) { _daemon = daemon, _daemonDir = daemonDir };
        try
        {
            foreach (var image in new[] { await TestImages.BuildPauseAsync(), await TestImages.BuildBusyboxAsync(), await TestImages.BuildDemoAsync() })
            {
                await node.ImportAsync(image.TarPath);
                await node.Cri.WaitForImageAsync(image.Name, TimeSpan.FromSeconds(30));
            }
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
        return node;
    }

    /// <summary>Runs containerd-wasm-install as a node would: shim into the fixture's bin dir, handler into its config.</summary>
    public static async Task<string> RunInstallerAsync(ContainerdFixture fixture, string shimDir, CancellationToken ct)
    {
        var result = await ProcessRunner.RunAsync(
            "dotnet",
            [
                Path.Combine(AppContext.BaseDirectory, "containerd-wasm-install.dll"),
                "--config", fixture.ConfigPath,
                "--bin-dir", fixture.NodeBinDir,
                "--source-dir", shimDir,
                "--containerd-version", fixture.Version,
            ],
            timeout: TimeSpan.FromMinutes(2),
            cancellationToken: ct);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"containerd-wasm-install failed:\n{result}");
        }
        return result.Stdout;
    }

    public async Task ImportAsync(string tarPath)
    {
        var result = await ProcessRunner.RunAsync(
            Containerd.CtrPath,
            ["--address", Containerd.Address, "--namespace", CriNamespace, "images", "import", tarPath],
            timeout: TimeSpan.FromMinutes(5));
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"import of {tarPath} into {CriNamespace} failed:\n{result}\n{Containerd.LogTail()}");
        }
    }

    /// <summary>RunPodSandbox with the given handler; its log directory and cgroup parent lie in the fixture's own space.</summary>
    public async Task<Pod> RunPodAsync(string name, string handler, bool hostNetwork)
    {
        var logDir = Path.Combine(Containerd.WorkDir, "pods", name);
        Directory.CreateDirectory(logDir);
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Uid = Guid.NewGuid().ToString(), Namespace = "default" },
            // A host-network pod shares the node's UTS namespace, where runc refuses to set a hostname.
            Hostname = hostNetwork ? "" : name,
            LogDirectory = logDir,
            Linux = new LinuxPodSandboxConfig
            {
                // Under the fixture's namespace, where teardown finds and removes cgroups and their processes.
                CgroupParent = $"/{Containerd.Namespace}/{name}",
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = hostNetwork ? NamespaceMode.Node : NamespaceMode.Pod },
                },
            },
        };
        config.Labels["test"] = name;
        var response = await Cri.Runtime.RunPodSandboxAsync(
            new RunPodSandboxRequest { Config = config, RuntimeHandler = handler }, deadline: CriClient.Deadline());
        if (!hostNetwork)
        {
            _networkNamespaces.Add(await NetworkNamespacePathAsync(response.PodSandboxId));
        }
        return new Pod(response.PodSandboxId, config, logDir);
    }

    /// <summary>CreateContainer in <paramref name="pod"/>; the log goes to &lt;pod log dir&gt;/&lt;name&gt;/0.log.</summary>
    public async Task<string> CreateContainerAsync(Pod pod, string name, string image, string[] command, params string[] args)
    {
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = name },
            Image = new ImageSpec { Image = image },
            LogPath = Path.Combine(name, "0.log"),
            Linux = new LinuxContainerConfig(),
        };
        config.Command.AddRange(command);
        config.Args.AddRange(args);
        var response = await Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod.Id, Config = config, SandboxConfig = pod.Config }, deadline: CriClient.Deadline());
        return response.ContainerId;
    }

    public async Task<string> StartContainerAsync(Pod pod, string name, string image, string[] command, params string[] args)
    {
        var id = await CreateContainerAsync(pod, name, image, command, args);
        await Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = id }, deadline: CriClient.Deadline());
        return id;
    }

    /// <summary>
    /// StopContainer with a grace period, as kubelet calls it: a failure is retried once (kubelet retries on its next
    /// sync), and a second failure carries the tail of containerd's log.
    /// </summary>
    /// <remarks>
    /// The retry is for containerd 2.1.9's runc shim, whose ttrpc connection was once seen to close in the middle of
    /// the Kill of a busybox container (about 1 run in 40: "failed to kill container …: ttrpc: closed"); kubelet
    /// would stop the container on its next attempt, and so does this.
    /// </remarks>
    public async Task StopContainerAsync(string containerId, long graceSeconds)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = containerId, Timeout = graceSeconds }, deadline: CriClient.Deadline());
                return;
            }
            catch (Grpc.Core.RpcException e) when (attempt == 1)
            {
                StopRetries.Add($"{containerId}: {e.Status.Detail}");
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            catch (Grpc.Core.RpcException e)
            {
                throw new InvalidOperationException(
                    $"StopContainer {containerId} failed twice ({string.Join("; ", StopRetries)}; then {e.Status})\n--- containerd log (tail) ---\n{Containerd.LogTail(60)}", e);
            }
        }
    }

    /// <summary>The first failures of StopContainer that a retry got past (see <see cref="StopContainerAsync"/>).</summary>
    public List<string> StopRetries { get; } = [];

    /// <summary>StopPodSandbox then RemovePodSandbox, as kubelet does when a pod is deleted.</summary>
    public async Task RemovePodAsync(Pod pod)
    {
        try
        {
            await Cri.Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline());
            await Cri.Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline());
        }
        catch (Grpc.Core.RpcException e)
        {
            throw new InvalidOperationException($"removing pod {pod.Id} failed: {e.Status}\n--- containerd log (tail) ---\n{Containerd.LogTail(400)}", e);
        }
    }

    /// <summary>The network namespace CRI pinned for a pod (under /var/run/netns), from the sandbox's OCI spec.</summary>
    public async Task<string> NetworkNamespacePathAsync(string podId)
    {
        var status = await Cri.Runtime.PodSandboxStatusAsync(
            new PodSandboxStatusRequest { PodSandboxId = podId, Verbose = true }, deadline: CriClient.Deadline());
        using var doc = System.Text.Json.JsonDocument.Parse(status.Info["info"]);
        foreach (var ns in doc.RootElement.GetProperty("runtimeSpec").GetProperty("linux").GetProperty("namespaces").EnumerateArray())
        {
            if (ns.GetProperty("type").GetString() == "network" && ns.TryGetProperty("path", out var path))
            {
                return path.GetString()!;
            }
        }
        throw new InvalidOperationException($"pod {podId} has no network namespace path in its spec");
    }

    /// <summary>The pid of a running container's task (from the verbose ContainerStatus info).</summary>
    public async Task<int> ContainerPidAsync(string containerId)
    {
        var status = await Cri.Runtime.ContainerStatusAsync(
            new ContainerStatusRequest { ContainerId = containerId, Verbose = true }, deadline: CriClient.Deadline());
        return VerbosePid(status.Info, containerId);
    }

    /// <summary>The pid of the pod's pause container (from the verbose PodSandboxStatus info).</summary>
    public async Task<int> SandboxPidAsync(Pod pod)
    {
        var status = await Cri.Runtime.PodSandboxStatusAsync(
            new PodSandboxStatusRequest { PodSandboxId = pod.Id, Verbose = true }, deadline: CriClient.Deadline());
        return VerbosePid(status.Info, pod.Id);
    }

    private static int VerbosePid(IDictionary<string, string> info, string id)
    {
        if (!info.TryGetValue("info", out var json))
        {
            throw new InvalidOperationException($"no verbose info for {id}: keys {string.Join(", ", info.Keys)}");
        }
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("pid").GetInt32();
    }

    /// <summary>
    /// Shim server processes of this node: the installed shim binary, serving this containerd, not an instance process.
    /// </summary>
    public IReadOnlyList<(int Pid, string CommandLine)> ShimServers() =>
        NodeProcesses().Where(p => !p.CommandLine.Contains("--instance", StringComparison.Ordinal)).ToList();

    /// <summary>Every process running the installed shim binary (shim servers and wasm instance processes).</summary>
    public IReadOnlyList<(int Pid, string CommandLine)> NodeProcesses()
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }
            try
            {
                var exe = new FileInfo(Path.Combine(dir, "exe")).LinkTarget;
                if (exe is not null && exe.StartsWith(Containerd.NodeBinDir + "/", StringComparison.Ordinal))
                {
                    found.Add((pid, File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim()));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone while we looked.
            }
        }
        return found;
    }

    /// <summary>Waits until no process runs the installed shim (the pod's shim exits once its last container is deleted).</summary>
    public async Task<IReadOnlyList<(int Pid, string CommandLine)>> WaitForNoShimAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = NodeProcesses();
            if (left.Count == 0 || DateTime.UtcNow > until)
            {
                return left;
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Cgroups still below the pod's cgroup parent (one per container while it exists), in every hierarchy.</summary>
    public IReadOnlyList<string> PodCgroups(Pod pod)
    {
        const string root = "/sys/fs/cgroup";
        var parent = pod.Config.Linux.CgroupParent.TrimStart('/');
        // cgroup v2 has one tree; v1 (and this machine's hybrid layout) one per controller.
        var trees = File.Exists(Path.Combine(root, "cgroup.controllers"))
            ? [root]
            : Directory.EnumerateDirectories(root).Where(d => new DirectoryInfo(d).LinkTarget is null).ToArray();
        return trees
            .Select(t => Path.Combine(t, parent))
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateDirectories(d, "*", SearchOption.AllDirectories))
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        Cri.Dispose();
        await Containerd.DisposeAsync();
        StopDaemon(_daemon, _daemonDir);
        _daemon = null;
        _daemonDir = null;
        // RemovePodSandbox unpins a pod's network namespace; a test that failed before it leaves it to us.
        foreach (var netns in _networkNamespaces)
        {
            HostScanner.RemoveNetworkNamespace(netns);
        }
    }

    /// <summary>The shared-mode daemon's pid (0 without one).</summary>
    public int DaemonPid => _daemon is { HasExited: false } d ? d.Id : 0;

    /// <summary>The shared-mode daemon's log so far.</summary>
    public string DaemonLog() => _daemonDir is { } dir && File.Exists(Path.Combine(dir, "daemon.log"))
        ? File.ReadAllText(Path.Combine(dir, "daemon.log")) : "";

    // The daemon's output goes to a file (no pipe to drain); its socket answering is checked by the first pod.
    private static System.Diagnostics.Process StartDaemon(string shimDir, string dir)
    {
        var log = Path.Combine(dir, "daemon.log");
        var psi = new System.Diagnostics.ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" --socket \"$1\" --debug 2>\"$2\" >&2");
        psi.ArgumentList.Add(Path.Combine(shimDir, "containerd-wasmtimed"));
        psi.ArgumentList.Add(Path.Combine(dir, "manager.sock"));
        psi.ArgumentList.Add(log);
        var daemon = System.Diagnostics.Process.Start(psi)!;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(Path.Combine(dir, "manager.sock")))
        {
            if (daemon.HasExited || DateTime.UtcNow > until)
            {
                StopDaemon(daemon, null);
                throw new InvalidOperationException($"containerd-wasmtimed did not start:\n{(File.Exists(log) ? File.ReadAllText(log) : "")}");
            }
            Thread.Sleep(50);
        }
        return daemon;
    }

    private static void StopDaemon(System.Diagnostics.Process? daemon, string? dir)
    {
        if (daemon is not null)
        {
            if (!daemon.HasExited)
            {
                daemon.Kill();
                daemon.WaitForExit(20_000);
            }
            daemon.Dispose();
        }
        if (dir is not null && Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Pinned pod network namespaces still on the host.</summary>
    public IReadOnlyList<string> LeftoverNetworkNamespaces() => _networkNamespaces.Where(File.Exists).ToList();
}

/// <summary>A pod sandbox the tests created, with the config CreateContainer needs again.</summary>
internal sealed record Pod(string Id, PodSandboxConfig Config, string LogDirectory)
{
    public string LogPath(string container) => Path.Combine(LogDirectory, container, "0.log");
}
