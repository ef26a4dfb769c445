using System.Diagnostics;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// After a shim crash containerd runs <c>shim delete</c>, which must kill the task and nothing else: the pid in
/// <c>init.pid</c> may belong to another process by then. The attack: the pid file names an unrelated process of the
/// host when the shim dies.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ShimDeleteTests(WasmShimFixture fx)
{
    [Fact]
    public async Task Delete_after_a_shim_crash_kills_the_instance_through_its_cgroup_and_not_the_pid_in_init_pid()
    {
        var id = WasmShimFixture.NewId("crash");
        using var bystander = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime, fx.DemoImage, id, "/wasi-demo-app.wasm", "daemon");
            var instance = await fx.Containerd.WaitForRunningPidAsync(id);
            var shim = ParentOf(instance);
            Assert.EndsWith(ShimBinary.Name, File.ReadAllText($"/proc/{shim}/cmdline").Split('\0')[0]);
            var bundle = Path.Combine(fx.Containerd.StateDir, "io.containerd.runtime.v2.task", fx.Containerd.Namespace, id);
            Assert.Equal(instance.ToString(), File.ReadAllText(Path.Combine(bundle, "init.pid")));

            File.WriteAllText(Path.Combine(bundle, "init.pid"), bystander.Id.ToString());
            Process.GetProcessById(shim).Kill();

            // containerd sees the connection close and runs `containerd-shim-wasmtime-v1 delete` for the task.
            await WaitUntilAsync(() => !Directory.Exists($"/proc/{instance}/fd"), $"instance process {instance} gone");
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.RunCtrAsync("container", "delete", id);

            Assert.False(bystander.HasExited, "shim delete killed the unrelated process named in init.pid");
            Assert.Empty(HostScanner.ProcessesMentioning(id, except: " events"));
            var leftovers = fx.Containerd.FindLeftovers();
            Assert.DoesNotContain(leftovers.Processes, p => p.Contains(id, StringComparison.Ordinal));
            Assert.DoesNotContain(leftovers.Paths, p => p.Contains(id, StringComparison.Ordinal));
            Assert.Empty(CgroupsOf(id));
            Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(id, StringComparison.Ordinal));
            Assert.False(Directory.Exists(bundle), "bundle remains");
        }
        finally
        {
            bystander.Kill();
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    internal static int ParentOf(int pid) =>
        int.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal)).Split('\t')[1]);

    private List<string> CgroupsOf(string id)
    {
        const string root = "/sys/fs/cgroup";
        var hierarchies = File.Exists(Path.Combine(root, "cgroup.controllers"))
            ? [root]
            : Directory.EnumerateDirectories(root).Where(d => new FileInfo(d).LinkTarget is null).Append(root);
        return hierarchies.Select(h => Path.Combine(h, fx.Containerd.Namespace, id)).Where(Directory.Exists).ToList();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(100);
        }
    }
}
