using System.Diagnostics;
using System.Text.Json.Nodes;
using Containerd.Testing;

namespace Shim.Tests;

/// <summary>
/// A container run from a hand-written OCI spec (<c>ctr run --config</c>; containerd 1.6's ctr has no --user):
/// a rootfs folder with the demo module, and a spec the test edits before running it.
/// </summary>
public sealed class ConfigContainer : IAsyncDisposable
{
    private readonly ContainerdFixture _containerd;
    private readonly string _dir;

    private ConfigContainer(ContainerdFixture containerd, string prefix, string wasm, string runtime = WasmShimFixture.Runtime)
    {
        Runtime = runtime;
        _containerd = containerd;
        Id = WasmShimFixture.NewId(prefix);
        _dir = Directory.CreateTempSubdirectory("config-container-").FullName;
        // Reachable by the container's user (CreateTempSubdirectory makes 0700 folders).
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);
        }
        Rootfs = Path.Combine(_dir, "rootfs");
        Directory.CreateDirectory(Rootfs);
        File.Copy(wasm, Path.Combine(Rootfs, "app.wasm"));
        Spec = new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                ["args"] = new JsonArray("/app.wasm"),
                ["env"] = new JsonArray("PATH=/"),
                ["cwd"] = "/",
            },
            ["root"] = new JsonObject { ["path"] = Rootfs },
            ["linux"] = new JsonObject { ["namespaces"] = new JsonArray() },
        };
    }

    /// <summary>The runtime ctr is told to use.</summary>
    public string Runtime { get; }

    /// <summary>The container id.</summary>
    public string Id { get; }

    /// <summary>The rootfs folder (root.path).</summary>
    public string Rootfs { get; }

    /// <summary>The spec, written when the container runs.</summary>
    public JsonObject Spec { get; }

    /// <summary>The spec's mounts (made on first use).</summary>
    public JsonArray Mounts => (Spec["mounts"] ??= new JsonArray()).AsArray();

    /// <summary>The spec's process object.</summary>
    public JsonObject Process => Spec["process"]!.AsObject();

    /// <summary>Creates the rootfs and spec for a container running the demo module.</summary>
    public static async Task<ConfigContainer> CreateAsync(WasmShimFixture fx, string prefix) =>
        new(fx.Containerd, prefix, await TestImages.EnsureDemoWasmAsync());

    /// <summary>The same for another runtime on another fixture's containerd (shared mode's).</summary>
    public static async Task<ConfigContainer> CreateAsync(ContainerdFixture containerd, string runtime, string prefix) =>
        new(containerd, prefix, await TestImages.EnsureDemoWasmAsync(), runtime);

    /// <summary>The same for another module or component, copied in as <c>/app.wasm</c>.</summary>
    public static ConfigContainer Create(ContainerdFixture containerd, string runtime, string prefix, string wasm) =>
        new(containerd, prefix, wasm, runtime);

    /// <summary>
    /// The same container for runc (<c>io.containerd.runc.v2</c>): the host's static busybox as <c>/bin/busybox</c>,
    /// for comparing what runc makes of a spec with what the wasm shim makes of it. Set its command with
    /// <see cref="Command"/>. With <paramref name="runtime"/> the wasm shim's, the shim hands it to runc itself.
    /// </summary>
    public static ConfigContainer CreateRunc(WasmShimFixture fx, string prefix, string runtime = "io.containerd.runc.v2")
    {
        var c = new ConfigContainer(fx.Containerd, prefix, "/bin/busybox", runtime);
        Directory.CreateDirectory(Path.Combine(c.Rootfs, "bin"));
        File.Move(Path.Combine(c.Rootfs, "app.wasm"), Path.Combine(c.Rootfs, "bin", "busybox"));
        // runc needs a mount namespace and its /proc.
        c.Namespace("mount");
        c.Mounts.Add(new JsonObject { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc" });
        return c;
    }

    /// <summary>Sets the whole command line, argv[0] included.</summary>
    public ConfigContainer Command(params string[] args)
    {
        Process["args"] = new JsonArray([.. args.Select(a => JsonValue.Create(a))]);
        return this;
    }

    /// <summary>Sets the demo's command line (after argv[0]).</summary>
    public ConfigContainer Args(params string[] args)
    {
        Process["args"] = new JsonArray([JsonValue.Create("/app.wasm"), .. args.Select(a => JsonValue.Create(a))]);
        return this;
    }

    /// <summary>Adds a namespace to create (no path) or join.</summary>
    public ConfigContainer Namespace(string type, string? path = null)
    {
        var ns = new JsonObject { ["type"] = type };
        if (path is not null)
        {
            ns["path"] = path;
        }
        Spec["linux"]!["namespaces"]!.AsArray().Add(ns);
        return this;
    }

    private string WriteSpec()
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, Spec.ToJsonString());
        return path;
    }

    /// <summary><c>ctr run --rm --config</c>: runs to completion.</summary>
    public Task<ProcessResult> RunAsync() =>
        _containerd.CtrAsync(["run", "--rm", "--runtime", Runtime, "--config", WriteSpec(), Id],
            TimeSpan.FromSeconds(90));

    /// <summary><c>ctr run -d --config</c>, then the task's pid once it is listed.</summary>
    public async Task<int> StartDetachedAsync()
    {
        await _containerd.RunCtrAsync(["run", "-d", "--runtime", Runtime, "--config", WriteSpec(), Id],
            TimeSpan.FromSeconds(90));
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            var ps = await _containerd.CtrAsync("task", "ps", Id);
            var pid = ps.Stdout.Split('\n').Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length > 0 && int.TryParse(f[0], out _)).Select(f => int.Parse(f[0])).FirstOrDefault();
            if (pid > 0)
            {
                return pid;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"ctr task ps {Id} listed no pid");
    }

    /// <summary><c>ctr container create --config</c>: the container only, for a test that drives the task itself.</summary>
    public Task CreateContainerAsync() =>
        _containerd.RunCtrAsync(["container", "create", "--runtime", Runtime, "--config", WriteSpec(), Id],
            TimeSpan.FromSeconds(90));

    /// <summary>Deletes the task (killing it) and the container; safe to call again.</summary>
    public async Task DeleteAsync()
    {
        // --force kills a live task and waits for it before deleting.
        await _containerd.CtrAsync("task", "delete", "--force", Id);
        await _containerd.CtrAsync("container", "delete", Id);
    }

    /// <summary>Deletes the task (killing it) and the container, removes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await DeleteAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
