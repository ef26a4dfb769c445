using System.Diagnostics;
using System.Text.Json.Nodes;
using Containerd.Testing;

namespace Shim.Tests;

/// <summary>
/// A container run from a hand-written OCI spec (<c>ctr run --config</c>; containerd 1.6's ctr has no --user):
/// a rootfs folder with the demo module (or, for runc, a static busybox), and a spec the test edits before running it.
/// </summary>
public sealed class ConfigContainer : IAsyncDisposable
{
    private readonly WasmShimFixture _fx;
    private readonly string _dir;

    private readonly string _runtime;

    private ConfigContainer(WasmShimFixture fx, string prefix, string? wasm)
    {
        _runtime = wasm is null ? LinuxRuntime : WasmShimFixture.Runtime;
        _fx = fx;
        Id = WasmShimFixture.NewId(prefix);
        _dir = Directory.CreateTempSubdirectory("config-container-").FullName;
        // Reachable by the container's user (CreateTempSubdirectory makes 0700 folders).
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);
        }
        Rootfs = Path.Combine(_dir, "rootfs");
        Directory.CreateDirectory(Rootfs);
        if (wasm is not null)
        {
            File.Copy(wasm, Path.Combine(Rootfs, "app.wasm"));
        }
        else
        {
            Directory.CreateDirectory(Path.Combine(Rootfs, "bin"));
            File.Copy(TestImages.BusyboxBinaryPath, Path.Combine(Rootfs, "bin", "busybox"));
        }
        Spec = new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                ["args"] = new JsonArray(wasm is null ? "/bin/busybox" : "/app.wasm"),
                ["env"] = new JsonArray("PATH=/"),
                ["cwd"] = "/",
            },
            ["root"] = new JsonObject { ["path"] = Rootfs },
            ["linux"] = new JsonObject { ["namespaces"] = new JsonArray() },
        };
        if (wasm is null)
        {
            // runc closes its exec fds by reading the container's /proc/self/fd.
            Spec["mounts"] = new JsonArray(new JsonObject { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc" });
        }
    }

    /// <summary>containerd's runc shim, which <see cref="CreateBusybox"/> containers run on.</summary>
    public const string LinuxRuntime = "io.containerd.runc.v2";

    /// <summary>The container id.</summary>
    public string Id { get; }

    /// <summary>The rootfs folder (root.path).</summary>
    public string Rootfs { get; }

    /// <summary>The spec, written when the container runs.</summary>
    public JsonObject Spec { get; }

    /// <summary>The spec's process object.</summary>
    public JsonObject Process => Spec["process"]!.AsObject();

    /// <summary>Creates the rootfs and spec for a container running the demo module.</summary>
    public static async Task<ConfigContainer> CreateAsync(WasmShimFixture fx, string prefix) =>
        new(fx, prefix, await TestImages.EnsureDemoWasmAsync());

    /// <summary>Creates the rootfs (<c>/bin/busybox</c>, from Debian's busybox-static) and spec for a Linux container
    /// that runs on <see cref="LinuxRuntime"/>, in new mount, pid, ipc and uts namespaces and with /proc, as runc expects.</summary>
    public static ConfigContainer CreateBusybox(WasmShimFixture fx, string prefix) =>
        new ConfigContainer(fx, prefix, null).Namespace("mount").Namespace("pid").Namespace("ipc").Namespace("uts");

    /// <summary>Sets the command line after argv[0] (<c>/app.wasm</c>, or <c>/bin/busybox</c> and an applet).</summary>
    public ConfigContainer Args(params string[] args)
    {
        Process["args"] = new JsonArray([Process["args"]![0]!.DeepClone(), .. args.Select(a => JsonValue.Create(a))]);
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
        _fx.Containerd.CtrAsync(["run", "--rm", "--runtime", _runtime, "--config", WriteSpec(), Id],
            TimeSpan.FromSeconds(90));

    /// <summary><c>ctr run -d --config</c>, then the task's pid once it is listed.</summary>
    public async Task<int> StartDetachedAsync()
    {
        await _fx.Containerd.RunCtrAsync(["run", "-d", "--runtime", _runtime, "--config", WriteSpec(), Id],
            TimeSpan.FromSeconds(90));
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            var ps = await _fx.Containerd.CtrAsync("task", "ps", Id);
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

    /// <summary>Deletes the task (killing it) and the container; safe to call again.</summary>
    public async Task DeleteAsync()
    {
        // --force kills a live task and waits for it before deleting.
        await _fx.Containerd.CtrAsync("task", "delete", "--force", Id);
        await _fx.Containerd.CtrAsync("container", "delete", Id);
    }

    /// <summary>Deletes the task (killing it) and the container, removes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        await DeleteAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
