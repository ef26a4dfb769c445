using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Containerd.Testing;

// Teardown: everything the instance created goes, in an order that lets each step succeed even when an
// earlier one did not (a test may have left tasks running, containerd may have crashed).
public partial class ContainerdFixture
{
    // containerd's runc shim keeps runc state under the first; the wasm shim runs its Linux containers under the second.
    private static readonly string[] RuncStateRoots = ["/run/containerd/runc", "/run/containerd/wasmtime-runc"];
    private const string ShimSocketDir = "/run/containerd/s";
    private readonly List<(string Ns, string Id)> _seenContainers = [];
    private readonly List<string> _teardownProblems = [];
    private readonly HashSet<string> _seenNamespaces = [];
    private readonly HashSet<string> _networkNamespaces = [];

    /// <summary>What teardown could not clean (empty after a clean teardown).</summary>
    public IReadOnlyList<string> TeardownProblems => _teardownProblems;

    /// <inheritdoc />
    Task Xunit.IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>
    /// Kills and deletes every task, removes containers, stops containerd (SIGTERM, then SIGKILL), kills any shim or
    /// container process still tied to this instance, unmounts what is mounted below <see cref="WorkDir"/>, and removes
    /// the folder, the runc state and cgroups of its namespaces, and its shim sockets. Safe to call twice.
    /// </summary>
    /// <returns>A task that completes when teardown is done; it does not throw (see <see cref="TeardownProblems"/>).</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        GC.SuppressFinalize(this);
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await Step("list task bundles", () =>
        {
            CollectBundles();
            return Task.CompletedTask;
        }).ConfigureAwait(false);
        await Step("remove tasks and containers", RemoveTasksAndContainersAsync).ConfigureAwait(false);
        await Step("stop containerd", StopContainerdAsync).ConfigureAwait(false);
        await Step("kill leftover processes", () => KillLeftoverProcessesAsync(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        await Step("unmount", () =>
        {
            foreach (var failure in HostScanner.UnmountAll(WorkDir))
            {
                _teardownProblems.Add("unmount " + failure);
            }
            return Task.CompletedTask;
        }).ConfigureAwait(false);
        await Step("remove runtime leftovers", () =>
        {
            RemoveRuntimeLeftovers();
            return Task.CompletedTask;
        }).ConfigureAwait(false);
        await Step("remove the CNI bridge", RemoveCniBridgeAsync).ConfigureAwait(false);
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
        await Step("remove work dir", () =>
        {
            // Never recurse into a folder that still has something mounted in it: that would delete through the mount.
            if (HostScanner.FindMounts(WorkDir).Count == 0 && Directory.Exists(WorkDir))
            {
                Directory.Delete(WorkDir, recursive: true);
            }
            return Task.CompletedTask;
        }).ConfigureAwait(false);
        _containerd?.Dispose();
        if (_teardownProblems.Count > 0)
        {
            Console.Error.WriteLine($"containerd fixture {WorkDir} teardown problems:\n  " + string.Join("\n  ", _teardownProblems));
        }
    }

    /// <summary>
    /// Lists what this instance left on the host: processes referencing its folder or running in its namespaces'
    /// cgroups, mounts below its folder, and its folder, runc state, cgroups and shim sockets if they still exist.
    /// </summary>
    /// <returns>The leftovers; empty after a clean teardown.</returns>
    public Leftovers FindLeftovers()
    {
        var known = KnownContainers().ToList();
        var namespaces = _seenNamespaces.Append(Namespace).Concat(known.Select(c => c.Ns)).Distinct().ToList();
        var processes = namespaces
            .SelectMany(ns => HostScanner.FindProcesses(WorkDir, ns))
            .DistinctBy(p => p.Pid)
            .Select(p => p.Description)
            .ToList();
        var paths = new List<string>();
        if (Directory.Exists(WorkDir))
        {
            paths.Add(WorkDir);
        }
        paths.AddRange(namespaces.SelectMany(ns => RuncStateRoots.Select(root => Path.Combine(root, ns))).Where(Directory.Exists));
        paths.AddRange(namespaces.SelectMany(CgroupDirs));
        paths.AddRange(known.Select(c => ShimSocketPath(c.Ns, c.Id)).Where(File.Exists));
        paths.AddRange(_networkNamespaces.Where(File.Exists));
        if (Directory.Exists(FifoDir))
        {
            paths.Add(FifoDir);
        }
        if (CniBridgeName is { } bridge && Directory.Exists(Path.Combine("/sys/class/net", bridge)))
        {
            paths.Add(Path.Combine("/sys/class/net", bridge));
        }
        paths.AddRange(CniCacheFiles());
        return new Leftovers(processes, HostScanner.FindMounts(WorkDir), paths);
    }

    /// <summary>The socket a containerd shim for <paramref name="id"/> listens on, derived the way containerd derives it.</summary>
    /// <param name="ns">The container's namespace.</param>
    /// <param name="id">The container id.</param>
    /// <returns>The socket path under /run/containerd/s.</returns>
    public string ShimSocketPath(string ns, string id)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(Path.Combine(Address, ns, id)));
        return Path.Combine(ShimSocketDir, Convert.ToHexStringLower(hash));
    }

    private async Task Step(string name, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _teardownProblems.Add($"{name}: {e.GetType().Name}: {e.Message}");
        }
    }

    // Task bundles name every container that has (or had) a shim, even when containerd is no longer there to ask.
    private void CollectBundles()
    {
        foreach (var (ns, id) in BundleContainers())
        {
            _seenNamespaces.Add(ns);
            _seenContainers.Add((ns, id));
        }
    }

    private IEnumerable<(string Ns, string Id)> KnownContainers() => _seenContainers.Concat(BundleContainers()).Distinct();

    private IEnumerable<(string Ns, string Id)> BundleContainers()
    {
        var tasks = Path.Combine(StateDir, "io.containerd.runtime.v2.task");
        if (!Directory.Exists(tasks))
        {
            return [];
        }
        return Directory.EnumerateDirectories(tasks)
            .SelectMany(nsDir => Directory.EnumerateDirectories(nsDir).Select(d => (Path.GetFileName(nsDir), Path.GetFileName(d))))
            .ToList();
    }

    private async Task RemoveTasksAndContainersAsync()
    {
        if (_containerd is null || _containerd.HasExited || BinDir.Length == 0)
        {
            return;
        }
        var timeout = TimeSpan.FromSeconds(30);
        var nsList = await ProcessRunner.RunAsync(
            CtrPath, ["--address", Address, "namespaces", "ls", "-q"], timeout: timeout).ConfigureAwait(false);
        var namespaces = Lines(nsList.Stdout).Append(Namespace).Distinct().ToList();
        foreach (var ns in namespaces)
        {
            _seenNamespaces.Add(ns);
            Task<ProcessResult> Ctr(params string[] args) =>
                ProcessRunner.RunAsync(CtrPath, new[] { "--address", Address, "--namespace", ns }.Concat(args), timeout: timeout);

            var containers = Lines((await Ctr("containers", "ls", "-q").ConfigureAwait(false)).Stdout);
            _seenContainers.AddRange(containers.Select(id => (ns, id)));
            var tasks = Lines((await Ctr("tasks", "ls", "-q").ConfigureAwait(false)).Stdout);
            foreach (var id in tasks)
            {
                await Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id).ConfigureAwait(false);
            }
            foreach (var id in tasks)
            {
                var deleted = await Ctr("tasks", "delete", "--force", id).ConfigureAwait(false);
                if (!deleted.Succeeded && !deleted.Stderr.Contains("not found", StringComparison.OrdinalIgnoreCase))
                {
                    _teardownProblems.Add($"delete task {ns}/{id}: {deleted.Stderr.Trim()}");
                }
            }
            foreach (var id in containers)
            {
                var info = await Ctr("containers", "info", id).ConfigureAwait(false);
                if (info.Succeeded)
                {
                    _networkNamespaces.UnionWith(NetworkNamespacePaths(info.Stdout));
                }
                await Ctr("containers", "delete", id).ConfigureAwait(false);
            }
        }
    }

    private async Task StopContainerdAsync()
    {
        if (_containerd is null || _containerd.HasExited)
        {
            return;
        }
        _ = Native.kill(_containerd.Id, Native.SIGTERM);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _containerd.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _teardownProblems.Add("containerd ignored SIGTERM for 10s; killed");
            _containerd.Kill();
            await _containerd.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task KillLeftoverProcessesAsync(TimeSpan patience)
    {
        var namespaces = _seenNamespaces.Append(Namespace).Distinct().ToList();
        var until = DateTime.UtcNow + patience;
        while (true)
        {
            var pids = namespaces.SelectMany(ns => HostScanner.FindProcesses(WorkDir, ns)).Select(p => p.Pid).Distinct().ToList();
            if (pids.Count == 0)
            {
                return;
            }
            if (DateTime.UtcNow > until)
            {
                _teardownProblems.Add("processes survived SIGKILL: " + string.Join(", ", pids));
                return;
            }
            foreach (var pid in pids)
            {
                _ = Native.kill(pid, Native.SIGKILL);
            }
            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    private void RemoveRuntimeLeftovers()
    {
        foreach (var ns in _seenNamespaces.Append(Namespace).Distinct())
        {
            foreach (var runc in RuncStateRoots.Select(root => Path.Combine(root, ns)).Where(Directory.Exists))
            {
                Directory.Delete(runc, recursive: true);
            }
            // A cgroup folder is removed with rmdir, deepest first; its control files go with it.
            foreach (var dir in CgroupDirs(ns).OrderByDescending(d => d.Length))
            {
                try
                {
                    Directory.Delete(dir, recursive: false);
                }
                catch (IOException e)
                {
                    _teardownProblems.Add($"cgroup {dir}: {e.Message}");
                }
            }
        }
        // CRI (or a test using --with-ns) pins pod network namespaces as bind mounts under /run/netns.
        foreach (var netns in _networkNamespaces)
        {
            HostScanner.RemoveNetworkNamespace(netns);
        }
        foreach (var (ns, id) in _seenContainers.Distinct())
        {
            var socket = ShimSocketPath(ns, id);
            if (File.Exists(socket))
            {
                File.Delete(socket);
            }
        }
    }

    private static IEnumerable<string> CgroupDirs(string ns)
    {
        const string root = "/sys/fs/cgroup";
        if (!Directory.Exists(root))
        {
            return [];
        }
        // cgroup v2 has one tree, v1 one per controller; ctr puts containers under /<namespace>/<id> in each.
        var parents = File.Exists(Path.Combine(root, "cgroup.controllers"))
            ? new[] { root }
            : Directory.EnumerateDirectories(root).Where(d => !new FileInfo(d).Attributes.HasFlag(FileAttributes.ReparsePoint)).ToArray();
        var found = new List<string>();
        foreach (var parent in parents)
        {
            var dir = Path.Combine(parent, ns);
            if (Directory.Exists(dir))
            {
                found.Add(dir);
                found.AddRange(Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories));
            }
        }
        return found;
    }

    // The network namespace a container joins is in its OCI spec: linux.namespaces[] { type: network, path }.
    private static IEnumerable<string> NetworkNamespacePaths(string containerInfoJson)
    {
        var found = new List<string>();
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(containerInfoJson);
            Walk(doc.RootElement);
        }
        catch (System.Text.Json.JsonException)
        {
            // Not JSON (an old ctr?): no namespaces to clean.
        }
        return found.Where(HostScanner.IsNetworkNamespaceMount);

        void Walk(System.Text.Json.JsonElement e)
        {
            if (e.ValueKind == System.Text.Json.JsonValueKind.Object)
            {
                if (e.TryGetProperty("type", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.String && t.GetString() == "network"
                    && e.TryGetProperty("path", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.String)
                {
                    found.Add(p.GetString()!);
                }
                foreach (var prop in e.EnumerateObject())
                {
                    Walk(prop.Value);
                }
            }
            else if (e.ValueKind == System.Text.Json.JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray())
                {
                    Walk(item);
                }
            }
        }
    }

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private void RegisterExitCleanup() => AppDomain.CurrentDomain.ProcessExit += OnProcessExit;

    // When the test host exits without disposing (a crash, or a runner that skips fixture teardown),
    // at least do not leave a containerd and its shims running.
    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }
        try
        {
            if (_containerd is { HasExited: false } p)
            {
                p.Kill();
            }
            foreach (var (pid, _) in HostScanner.FindProcesses(WorkDir, Namespace))
            {
                _ = Native.kill(pid, Native.SIGKILL);
            }
            HostScanner.UnmountAll(WorkDir);
        }
        catch (Exception)
        {
            // Best effort at process exit: there is nobody left to report to.
        }
    }

    private static class Native
    {
        public const int SIGKILL = 9;
        public const int SIGTERM = 15;

        [DllImport("libc", SetLastError = true)]
        public static extern int kill(int pid, int sig);
    }
}
