using System.Net;
using System.Net.Sockets;
using Cri.Api.V1;
using ImageBuilder;
using Xunit;

namespace Cri.Tests;

/// <summary>
/// The CRI harness itself, with containerd's own runc handler: a pod on the CNI bridge gets an IP, a busybox
/// server in it answers from the host, logs are in CRI format, and nothing is left when the pod is gone.
/// </summary>
[Trait("Category", "Integration")]
[Collection(CriNodeCollection.Name)]
public sealed class RuncPodTests
{
    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Runc_pod_on_the_cni_bridge_gets_an_ip_and_its_busybox_server_answers_from_the_host()
    {
        await using var node = await CriNode.StartAsync(cni: true);
        var pod = await node.RunPodAsync("runc-net", "runc", hostNetwork: false);

        var status = (await node.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline())).Status;
        Assert.Equal(PodSandboxState.SandboxReady, status.State);
        Assert.Equal("runc", status.RuntimeHandler);
        var ip = IPAddress.Parse(status.Network.Ip);
        Assert.StartsWith(node.Containerd.CniSubnet![..node.Containerd.CniSubnet!.LastIndexOf('.')] + ".", ip.ToString());

        var server = await node.StartContainerAsync(pod, "server", KnownImages.BusyboxName, ["sh", "-c"],
            "echo listening; while true; do echo hello-from-sidecar | nc -l -p 8080; done");
        Assert.Equal("hello-from-sidecar", await ReadLineFromAsync(ip, 8080, TimeSpan.FromSeconds(20)));

        await node.StopContainerAsync(server, graceSeconds: 1);
        var stopped = await node.Cri.WaitForExitAsync(server, TimeSpan.FromSeconds(30));
        // Ended by the stop signal or, at the end of the grace period, by SIGKILL: either way by a signal.
        Assert.Contains(stopped.ExitCode, new[] { 128 + 15, 128 + 9 });
        Assert.Equal("Error", stopped.Reason);
        var log = CriLogLine.ReadAll(pod.LogPath("server"));
        Assert.Contains(log, l => l.Stream == "stdout" && l.Tag == "F" && l.Text == "listening");

        await node.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = server }, deadline: CriClient.Deadline());
        await node.RemovePodAsync(pod);
        var pods = await node.Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: CriClient.Deadline());
        Assert.Empty(pods.Items);
        Assert.Empty(node.PodCgroups(pod));
        Assert.Empty(Containerd.Testing.HostScanner.FindMounts(node.Containerd.WorkDir));

        await node.DisposeAsync();
        Assert.True(node.Containerd.FindLeftovers().IsEmpty, node.Containerd.FindLeftovers().ToString());
        Assert.Empty(node.Containerd.TeardownProblems);
        Assert.Empty(node.LeftoverNetworkNamespaces());
    }

    /// <summary>Connects to a pod's server from the host, retrying until it listens.</summary>
    internal static async Task<string> ReadLineFromAsync(IPAddress ip, int port, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await client.ConnectAsync(ip, port, cts.Token);
                using var reader = new StreamReader(client.GetStream());
                var line = await reader.ReadLineAsync(cts.Token);
                if (line is not null)
                {
                    return line;
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException && DateTime.UtcNow < until)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"nothing answered on {ip}:{port} within {timeout}");
            }
            await Task.Delay(200);
        }
    }
}
