using Cri.Api.V1;
using ImageBuilder;
using Xunit;

namespace Cri.Tests;

/// <summary>
/// A pod whose RuntimeClass handler is the shared-mode one (<c>io.containerd.wasmtimed.v1</c>) through containerd's
/// CRI plugin: the pause container and a busybox sidecar run as Linux containers through runc, started by the
/// <c>containerd-wasmtimed</c> daemon (their parent), the wasm container in the daemon itself.
/// </summary>
[Trait("Category", "Integration")]
[Collection(CriNodeCollection.Name)]
public sealed class SharedModePodTests
{
    private const string DemoModule = "/wasi-demo-app.wasm";

    [Fact]
    public async Task Pod_of_a_wasm_container_and_a_busybox_sidecar_runs_in_the_daemon()
    {
        await using var node = await CriNode.StartAsync(cni: false, shared: true);
        var pod = await node.RunPodAsync("shared-pod", CriNode.SharedHandler, hostNetwork: true);

        var wasm = await node.StartContainerAsync(pod, "wasm", KnownImages.DemoName, [DemoModule], "daemon");
        var sidecar = await node.StartContainerAsync(pod, "sidecar", KnownImages.BusyboxName, ["sleep"], "3600");
        var hello = await node.StartContainerAsync(pod, "hello", KnownImages.DemoName, [DemoModule], "echo", "hello from shared mode");

        var helloStatus = await node.Cri.WaitForExitAsync(hello, TimeSpan.FromSeconds(60));
        Assert.Equal((0, "Completed"), (helloStatus.ExitCode, helloStatus.Reason));
        Assert.Contains(CriLogLine.ReadAll(pod.LogPath("hello")), l => l is { Stream: "stdout", Text: "hello from shared mode" });
        foreach (var id in new[] { wasm, sidecar })
        {
            var status = await node.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = id }, deadline: CriClient.Deadline());
            Assert.Equal(ContainerState.ContainerRunning, status.Status.State);
        }

        // The wasm container's pid is the daemon's; pause and busybox are processes of their own, children of the
        // daemon (runc's init processes re-parented to it); no per-pod shim process exists.
        var daemon = node.DaemonPid;
        Assert.NotEqual(0, daemon);
        Assert.Equal(daemon, await node.ContainerPidAsync(wasm));
        var pausePid = await node.SandboxPidAsync(pod);
        var sidecarPid = await node.ContainerPidAsync(sidecar);
        Assert.NotEqual(daemon, pausePid);
        Assert.NotEqual(daemon, sidecarPid);
        Assert.Equal(daemon, ParentOf(pausePid));
        Assert.Equal(daemon, ParentOf(sidecarPid));
        Assert.Contains("sleep", File.ReadAllText($"/proc/{sidecarPid}/cmdline"));
        Assert.DoesNotContain(node.ShimServers(), p => !p.CommandLine.Contains("containerd-wasmtimed", StringComparison.Ordinal));

        foreach (var id in new[] { wasm, sidecar })
        {
            await node.Cri.Runtime.StopContainerAsync(new StopContainerRequest { ContainerId = id, Timeout = 10 }, deadline: CriClient.Deadline());
        }
        foreach (var id in new[] { wasm, sidecar, hello })
        {
            await node.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.Deadline());
        }
        await node.RemovePodAsync(pod);
        Assert.False(Directory.Exists($"/proc/{pausePid}") && !IsZombie(pausePid), "the pause container outlived its pod");
        Assert.False(Directory.Exists($"/proc/{sidecarPid}") && !IsZombie(sidecarPid), "the sidecar outlived its pod");
        var pods = await node.Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: CriClient.Deadline());
        Assert.Empty(pods.Items);
        Assert.Empty(node.PodCgroups(pod));
        Assert.Empty(Containerd.Testing.HostScanner.FindMounts(node.Containerd.WorkDir));
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }
}
