using System.Diagnostics;
using System.Text;
using Containerd.Api.Client;
using Containerd.Services.Tasks.V1;
using Containerd.Shimkit.Cgroups;
using Containerd.Testing;
using Grpc.Core;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// Resources and cgroups end to end: the installed shim driven by a private containerd through ctr and the gRPC
/// client, every guarantee checked from outside the task (its <c>/proc/&lt;pid&gt;/cgroup</c> and the cgroup files).
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CgroupTests(WasmShimFixture fx, ITestOutputHelper output)
{
    private const string Demo = "/wasi-demo-app.wasm";
    private const string ImageName = "localhost/runwasi-dotnet/cgroup-tests:latest";

    /// <summary>Grows its linear memory 1 MiB at a time, writing every 4 KiB page, until memory.grow fails; then
    /// says so on stderr and exits 3, as a program whose malloc fails would.</summary>
    private const string GrowUntilRefused = """
        (module
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "grow: memory.grow refused more memory\n")
          (func (export "_start")
            (local $old i32) (local $addr i32) (local $end i32)
            (block $refused
              (loop $more
                (local.set $old (memory.grow (i32.const 16)))
                (br_if $refused (i32.eq (local.get $old) (i32.const -1)))
                (local.set $addr (i32.mul (local.get $old) (i32.const 65536)))
                (local.set $end (i32.add (local.get $addr) (i32.const 1048576)))
                (loop $touch
                  (i32.store8 (local.get $addr) (i32.const 1))
                  (local.set $addr (i32.add (local.get $addr) (i32.const 4096)))
                  (br_if $touch (i32.lt_u (local.get $addr) (local.get $end))))
                (br $more)))
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 38))
            (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $exit (i32.const 3))))
        """;

    /// <summary>Asks for 125 MiB of linear memory up front.</summary>
    private const string BigInitialMemory = """(module (memory (export "memory") 2000) (func (export "_start")))""";

    private static readonly SemaphoreSlim ImageGate = new(1, 1);
    private static ContainerdFixture? _imported;

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Guest_growing_past_the_memory_limit_gets_a_failed_grow_not_an_oom_kill()
    {
        await EnsureImageAsync();
        var id = WasmShimFixture.NewId("grow");
        var result = await fx.RunAsync(ImageName, id, ["/grow.wat"], ["--memory-limit", (96 << 20).ToString()]);
        output.WriteLine(result.ToString());
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("memory.grow refused more memory", result.Stderr);
    }

    [Fact]
    public async Task Module_whose_initial_memory_exceeds_the_limit_fails_with_the_limit_named()
    {
        await EnsureImageAsync();
        var result = await fx.RunAsync(ImageName, WasmShimFixture.NewId("big"), ["/big.wat"], ["--memory-limit", (64 << 20).ToString()]);
        output.WriteLine(result.ToString());
        Assert.Equal(134, result.ExitCode);
        Assert.Contains($"memory limit of {64 << 20} bytes", result.Stderr);
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Cpu_quota_and_memory_limit_are_in_the_task_pids_cgroup_which_goes_away_at_delete()
    {
        if (!HostIsV1)
        {
            output.WriteLine("SKIPPED: this test reads cgroup v1 files and the host is cgroup v2 (V2_limits_are_in_the_unified_cgroup covers it)");
            return;
        }
        var id = WasmShimFixture.NewId("quota");
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime,
            "--cpu-quota", "20000", "--cpu-period", "100000", "--memory-limit", (128 << 20).ToString(),
            fx.DemoImage, id, Demo, "daemon");
        string[] dirs = [];
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            var cpu = CgroupOf(pid, "cpu");
            var memory = CgroupOf(pid, "memory");
            output.WriteLine($"task {pid}: cpu cgroup {cpu}, memory cgroup {memory}");
            Assert.EndsWith("/" + id, cpu);
            Assert.Equal(cpu, memory);
            var host = CgroupHierarchy.Host;
            dirs = [.. host.Controllers.Values.Distinct().Select(m => Path.Join(m, cpu))];
            Assert.Equal("20000", Read(host.Controllers["cpu"], cpu, "cpu.cfs_quota_us"));
            Assert.Equal("100000", Read(host.Controllers["cpu"], cpu, "cpu.cfs_period_us"));
            Assert.Equal((128 << 20).ToString(), Read(host.Controllers["memory"], memory, "memory.limit_in_bytes"));
            Assert.Contains(pid.ToString(), Read(host.Controllers["pids"], cpu, "cgroup.procs").Split('\n'));
        }
        finally
        {
            await KillAndDeleteAsync(id);
        }
        Assert.All(dirs, d => Assert.False(Directory.Exists(d), $"cgroup {d} remains after delete"));
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Ctr_task_metrics_shows_the_tasks_memory()
    {
        var id = WasmShimFixture.NewId("metrics");
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime,
            "--memory-limit", (128 << 20).ToString(), fx.DemoImage, id, Demo, "daemon");
        try
        {
            await fx.Containerd.WaitForRunningPidAsync(id);
            var text = await fx.Containerd.RunCtrAsync("task", "metrics", id);
            output.WriteLine(text);
            // ctr prints a table of "memory.usage_in_bytes <n>" (v1) or "memory.usage <n>" (v2) lines.
            var usage = text.Split('\n').Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                .FirstOrDefault(f => f.Length == 2 && f[0] is "memory.usage_in_bytes" or "memory.usage");
            Assert.NotNull(usage);
            Assert.True(ulong.Parse(usage[1]) > 0, $"memory usage is {usage[1]}");
            Assert.Contains((128 << 20).ToString(), text);
        }
        finally
        {
            await KillAndDeleteAsync(id);
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Tasks_update_raises_the_memory_limit_and_the_pids_limit()
    {
        var id = WasmShimFixture.NewId("update");
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime,
            "--memory-limit", (64 << 20).ToString(), fx.DemoImage, id, Demo, "daemon");
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"memory":{"limit":201326592},"pids":{"limit":50}}"""),
            });
            if (HostIsV1)
            {
                var host = CgroupHierarchy.Host;
                Assert.Equal("201326592", Read(host.Controllers["memory"], CgroupOf(pid, "memory"), "memory.limit_in_bytes"));
                Assert.Equal("50", Read(host.Controllers["pids"], CgroupOf(pid, "pids"), "pids.max"));
            }
            else
            {
                var root = CgroupHierarchy.Host.UnifiedRoot!;
                Assert.Equal("201326592", Read(root, CgroupOf(pid, null), "memory.max"));
            }

            var bad = await Assert.ThrowsAsync<RpcException>(() => client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"memory":{"limit":"lots"}}"""),
            }).ResponseAsync);
            output.WriteLine(bad.Status.Detail);
            Assert.Contains("LinuxResources", bad.Status.Detail);
        }
        finally
        {
            await KillAndDeleteAsync(id);
        }
    }

    [Fact]
    public async Task Kernel_oom_kill_is_published_as_tasks_oom()
    {
        // The engine caps linear memory under the spec's 512 MiB; lowering the cgroup to 32 MiB before Start lets the
        // kernel's OOM killer act first, as it would for memory the engine does not account.
        await EnsureImageAsync();
        var id = WasmShimFixture.NewId("oom");
        await fx.Containerd.RunCtrAsync("container", "create", "--runtime", WasmShimFixture.Runtime,
            "--memory-limit", (512 << 20).ToString(), ImageName, id, "/grow.wat");
        using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await using var events = await EventSubscription.StartAsync(client, [EventFilters.Topic("/tasks/oom")], cts.Token);
            var mounts = await client.Snapshots.MountsAsync(new Containerd.Services.Snapshots.V1.MountsRequest { Snapshotter = "overlayfs", Key = id });
            await client.Tasks.CreateAsync(new CreateTaskRequest { ContainerId = id, Rootfs = { mounts.Mounts } });
            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"memory":{"limit":33554432}}"""),
            });
            var waiting = client.Tasks.WaitAsync(new WaitRequest { ContainerId = id }, cancellationToken: cts.Token);
            await client.Tasks.StartAsync(new StartRequest { ContainerId = id });
            var oom = await events.WaitForAsync(e => e.Topic == "/tasks/oom", cts.Token);
            Assert.True(oom.TryUnpack<Containerd.Events.TaskOOM>(out var message));
            Assert.Equal(id, message.ContainerId);
            var exit = await waiting;
            Assert.Equal(137u, exit.ExitStatus);
        }
        finally
        {
            await KillAndDeleteAsync(id);
        }
    }

    [Fact]
    public async Task Systemd_form_cgroups_path_fails_create_with_a_clear_error()
    {
        var id = WasmShimFixture.NewId("systemd");
        var result = await fx.Containerd.CtrAsync("run", "--rm", "--runtime", WasmShimFixture.Runtime,
            "--cgroup", $"system.slice:cri-containerd:{id}", fx.DemoImage, id, Demo, "echo", "hi");
        output.WriteLine(result.ToString());
        Assert.False(result.Succeeded);
        Assert.Contains("systemd cgroup driver is not supported yet", result.Stderr);
        await fx.Containerd.CtrAsync("container", "rm", id);
    }

    [Fact]
    public async Task V2_limits_are_in_the_unified_cgroup()
    {
        if (CgroupHierarchy.Host.Version != CgroupVersion.V2)
        {
            output.WriteLine("SKIPPED: this host is not pure cgroup v2 (its v2 hierarchy, if any, holds no resource " +
                "controller and the shim uses v1); the v2 code is covered by KitCgroupTests' fixture trees");
            return;
        }
        var id = WasmShimFixture.NewId("v2");
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime,
            "--cpu-quota", "20000", "--cpu-period", "100000", "--memory-limit", (128 << 20).ToString(),
            fx.DemoImage, id, Demo, "daemon");
        string dir = "";
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            var path = CgroupOf(pid, null);
            dir = Path.Join(CgroupHierarchy.Host.UnifiedRoot!, path);
            Assert.EndsWith("/" + id, path);
            Assert.Equal("20000 100000", File.ReadAllText(Path.Combine(dir, "cpu.max")).Trim());
            Assert.Equal((128 << 20).ToString(), File.ReadAllText(Path.Combine(dir, "memory.max")).Trim());
        }
        finally
        {
            await KillAndDeleteAsync(id);
        }
        Assert.False(Directory.Exists(dir), $"cgroup {dir} remains after delete");
    }

    private static bool HostIsV1 => CgroupHierarchy.Host.Version == CgroupVersion.V1;

    private async Task EnsureImageAsync()
    {
        await ImageGate.WaitAsync();
        try
        {
            if (_imported != fx.Containerd)
            {
                var image = TestImages.Build("cgroup-tests", new ImageDefinition
                {
                    Name = ImageName,
                    Platform = Platform.LinuxAmd64,
                    Config = new ImageConfig { Entrypoint = ["/grow.wat"] },
                    Layers =
                    [
                        new FilesystemLayer(
                        [
                            LayerEntry.Bytes("grow.wat", Encoding.UTF8.GetBytes(GrowUntilRefused)),
                            LayerEntry.Bytes("big.wat", Encoding.UTF8.GetBytes(BigInitialMemory)),
                        ]),
                    ],
                });
                await fx.Containerd.ImportAsync(image.TarPath);
                _imported = fx.Containerd;
            }
        }
        finally
        {
            ImageGate.Release();
        }
    }

    /// <summary>The task's cgroup path in <paramref name="controller"/>'s hierarchy (null: the unified one), read
    /// from outside through <c>/proc/&lt;pid&gt;/cgroup</c>.</summary>
    private static string CgroupOf(int pid, string? controller)
    {
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (controller is null ? parts[1].Length == 0 : parts[1].Split(',').Contains(controller))
            {
                return parts[2];
            }
        }
        throw new InvalidOperationException($"/proc/{pid}/cgroup names no {controller ?? "unified"} cgroup");
    }

    private static string Read(string mount, string cgroup, string file) =>
        File.ReadAllText(Path.Combine(Path.Join(mount, cgroup), file)).Trim();

    private async Task KillAndDeleteAsync(string id)
    {
        await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            var delete = await fx.Containerd.CtrAsync("task", "delete", id);
            if (delete.Succeeded || delete.Stderr.Contains("not found", StringComparison.OrdinalIgnoreCase))
            {
                break;
            }
            await Task.Delay(100);
        }
        await fx.Containerd.CtrAsync("container", "rm", id);
    }
}
