using System.Diagnostics;
using System.Net;
using Cri.Api.V1;
using Grpc.Core;
using ImageBuilder;
using Xunit;

namespace Cri.Tests;

/// <summary>
/// Pods whose RuntimeClass handler is <c>wasmtime</c>, driven through containerd's CRI plugin as kubelet drives them:
/// the pause container runs as a Linux container inside the shim, the wasm containers beside it, all of them in one
/// shim process that exits when the pod is gone.
/// </summary>
[Trait("Category", "Integration")]
[Collection(CriNodeCollection.Name)]
public sealed class WasmPodTests
{
    private const string DemoModule = "/wasi-demo-app.wasm";

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Pod_with_one_wasm_container_runs_it_to_completion_and_logs_in_cri_format()
    {
        await using var node = await CriNode.StartAsync(cni: false);
        var pod = await node.RunPodAsync("wasm-one", CriNode.WasmHandler, hostNetwork: true);

        var id = await node.StartContainerAsync(pod, "hello", KnownImages.DemoName, [DemoModule], "echo", "hello from wasm");
        var status = await node.Cri.WaitForExitAsync(id, TimeSpan.FromSeconds(60));

        Assert.Equal(0, status.ExitCode);
        Assert.Equal("Completed", status.Reason);
        // (No order between the two: CRI stamps StartedAt after the shim's Start returns, FinishedAt is the shim's exit time.)
        Assert.True(status.StartedAt > 0 && status.FinishedAt > 0, $"started {status.StartedAt}, finished {status.FinishedAt}");
        Assert.Equal(pod.LogPath("hello"), status.LogPath);
        var log = CriLogLine.ReadAll(pod.LogPath("hello"));
        Assert.Contains(log, l => l is { Stream: "stdout", Tag: "F", Text: "hello from wasm" });
        Assert.Contains(log, l => l is { Stream: "stderr", Tag: "F", Text: "exiting" });
        var shim = Assert.Single(node.ShimServers());
        Assert.Contains(pod.Id, shim.CommandLine);

        await node.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.Deadline());
        await node.RemovePodAsync(pod);
        Assert.Empty(await node.WaitForNoShimAsync(TimeSpan.FromSeconds(30)));

        await AssertNothingLeftAsync(node, pod);
    }

    [Fact]
    public async Task Pod_of_three_wasm_containers_shares_one_shim_and_each_reports_its_own_exit()
    {
        await using var node = await CriNode.StartAsync(cni: false);
        var pod = await node.RunPodAsync("wasm-three", CriNode.WasmHandler, hostNetwork: true);

        var ok = await node.StartContainerAsync(pod, "ok", KnownImages.DemoName, [DemoModule], "echo", "one");
        var fail = await node.StartContainerAsync(pod, "fail", KnownImages.DemoName, [DemoModule], "exit", "3");
        var daemon = await node.StartContainerAsync(pod, "daemon", KnownImages.DemoName, [DemoModule], "daemon");

        var okStatus = await node.Cri.WaitForExitAsync(ok, TimeSpan.FromSeconds(60));
        Assert.Equal((0, "Completed"), (okStatus.ExitCode, okStatus.Reason));
        var failStatus = await node.Cri.WaitForExitAsync(fail, TimeSpan.FromSeconds(60));
        Assert.Equal((3, "Error"), (failStatus.ExitCode, failStatus.Reason));
        var running = await node.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = daemon }, deadline: CriClient.Deadline());
        Assert.Equal(ContainerState.ContainerRunning, running.Status.State);

        // The pause container and all three wasm containers: one shim server, grouped by io.kubernetes.cri.sandbox-id.
        var shim = Assert.Single(node.ShimServers());
        Assert.Contains(pod.Id, shim.CommandLine);

        // The daemon prints until it is told to stop; SIGTERM ends it well within the grace period (no SIGKILL needed).
        await WaitForLogLineAsync(pod.LogPath("daemon"), TimeSpan.FromSeconds(30));
        const int grace = 10;
        var clock = Stopwatch.StartNew();
        await node.StopContainerAsync(daemon, grace);
        clock.Stop();
        var stopped = await node.Cri.WaitForExitAsync(daemon, TimeSpan.FromSeconds(5));
        Assert.Equal(128 + 15, stopped.ExitCode);
        Assert.Equal("Error", stopped.Reason);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(grace), $"StopContainer took {clock.Elapsed}: SIGTERM did not stop the daemon");

        foreach (var id in new[] { ok, fail, daemon })
        {
            await node.Cri.Runtime.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = id }, deadline: CriClient.Deadline());
        }
        var left = await node.Cri.Runtime.ListContainersAsync(new ListContainersRequest(), deadline: CriClient.Deadline());
        Assert.Empty(left.Containers);
        await node.RemovePodAsync(pod);
        Assert.Empty(await node.WaitForNoShimAsync(TimeSpan.FromSeconds(30)));

        await AssertNothingLeftAsync(node, pod);
    }

    // CRI's CreateContainer only records the container; the shim first sees it when StartContainer creates the task,
    // so that is where the shim's error arrives, and kubelet reports it as the container's StartError.
    [Fact]
    public async Task Missing_module_fails_StartContainer_with_the_shims_message_and_the_pod_keeps_running()
    {
        await using var node = await CriNode.StartAsync(cni: false);
        var pod = await node.RunPodAsync("wasm-bad", CriNode.WasmHandler, hostNetwork: true);
        var daemon = await node.StartContainerAsync(pod, "daemon", KnownImages.DemoName, [DemoModule], "daemon");

        var bad = await node.CreateContainerAsync(pod, "bad", KnownImages.DemoName, ["/no-such-module.wasm"]);
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await node.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = bad }, deadline: CriClient.Deadline()));

        Assert.Contains("/no-such-module.wasm", error.Status.Detail);
        var failed = (await node.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = bad }, deadline: CriClient.Deadline())).Status;
        Assert.Equal(ContainerState.ContainerExited, failed.State);
        Assert.Equal("StartError", failed.Reason);
        Assert.Contains("/no-such-module.wasm", failed.Message);
        var status = await node.Cri.Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = daemon }, deadline: CriClient.Deadline());
        Assert.Equal(ContainerState.ContainerRunning, status.Status.State);
        var sandbox = await node.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline());
        Assert.Equal(PodSandboxState.SandboxReady, sandbox.Status.State);
        Assert.Single(node.ShimServers());

        // Deleting the pod stops its running containers too (StopPodSandbox), as when a Deployment is scaled down.
        await node.RemovePodAsync(pod);
        Assert.Empty(await node.WaitForNoShimAsync(TimeSpan.FromSeconds(30)));

        await AssertNothingLeftAsync(node, pod);
    }

    [Fact]
    public async Task Wasm_container_and_busybox_sidecar_share_the_pods_network_namespace()
    {
        await using var node = await CriNode.StartAsync(cni: true);
        var pod = await node.RunPodAsync("wasm-net", CriNode.WasmHandler, hostNetwork: false);
        var sandbox = await node.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline());
        var ip = IPAddress.Parse(sandbox.Status.Network.Ip);

        var wasm = await node.StartContainerAsync(pod, "wasm", KnownImages.DemoName, [DemoModule], "daemon");
        var sidecar = await node.StartContainerAsync(pod, "sidecar", KnownImages.BusyboxName, ["sh", "-c"],
            "while true; do echo hello-from-sidecar | nc -l -p 8080; done");

        var pausePid = await node.SandboxPidAsync(pod);
        var wasmPid = await node.ContainerPidAsync(wasm);
        var sidecarPid = await node.ContainerPidAsync(sidecar);
        var podNet = NetNamespace(pausePid);
        Assert.NotEqual(NetNamespace(Environment.ProcessId), podNet);
        Assert.Equal(podNet, NetNamespace(wasmPid));
        Assert.Equal(podNet, NetNamespace(sidecarPid));
        Assert.Equal("hello-from-sidecar", await RuncPodTests.ReadLineFromAsync(ip, 8080, TimeSpan.FromSeconds(20)));
        Assert.Single(node.ShimServers());

        await node.RemovePodAsync(pod);
        Assert.Empty(await node.WaitForNoShimAsync(TimeSpan.FromSeconds(30)));

        await AssertNothingLeftAsync(node, pod);
    }

    [Fact]
    public async Task Http_component_in_a_pod_answers_get_and_post_on_the_pod_ip()
    {
        await using var node = await CriNode.StartAsync(cni: true);
        const string Image = "localhost/runwasi-dotnet/http-echo-cri:latest";
        var component = await Containerd.Testing.TestImages.EnsureComponentAsync("http-echo");
        var image = Containerd.Testing.TestImages.Build("http-echo-cri", new ImageDefinition
        {
            Name = Image,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = ["/http-echo.wasm"] },
            Layers = [new FilesystemLayer([LayerEntry.File("http-echo.wasm", component, Modes.Executable)])],
        });
        await node.ImportAsync(image.TarPath);
        var pod = await node.RunPodAsync("wasm-http", CriNode.WasmHandler, hostNetwork: false);
        var sandbox = await node.Cri.Runtime.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = pod.Id }, deadline: CriClient.Deadline());
        var ip = IPAddress.Parse(sandbox.Status.Network.Ip);

        // Create loads the component, which compiles it unless the shim's cache has it: longer than the usual
        // deadline on a loaded machine. It listens on the default 0.0.0.0:8080 in the pod's network namespace.
        var config = new ContainerConfig
        {
            Metadata = new ContainerMetadata { Name = "echo" },
            Image = new ImageSpec { Image = Image },
            LogPath = Path.Combine("echo", "0.log"),
            Linux = new LinuxContainerConfig(),
        };
        var created = await node.Cri.Runtime.CreateContainerAsync(
            new CreateContainerRequest { PodSandboxId = pod.Id, Config = config, SandboxConfig = pod.Config }, deadline: CriClient.Deadline(600));
        await node.Cri.Runtime.StartContainerAsync(new StartContainerRequest { ContainerId = created.ContainerId }, deadline: CriClient.Deadline());

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var get = new HttpRequestMessage(HttpMethod.Get, $"http://{ip}:8080/hello?x=1");
        get.Headers.Add("x-echo", "from-the-host");
        var got = await SendUntilListeningAsync(http, get, TimeSpan.FromMinutes(2));
        Assert.Equal("method=GET\npath=/hello?x=1\nx-echo=from-the-host\n\n", got);
        var post = new HttpRequestMessage(HttpMethod.Post, $"http://{ip}:8080/echo") { Content = new StringContent("posted to the pod") };
        post.Headers.Add("x-echo", "post");
        using var posted = await http.SendAsync(post);
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        Assert.Equal("method=POST\npath=/echo\nx-echo=post\n\nposted to the pod", await posted.Content.ReadAsStringAsync());
        Assert.Single(node.ShimServers());

        await node.RemovePodAsync(pod);
        Assert.Empty(await node.WaitForNoShimAsync(TimeSpan.FromSeconds(30)));

        await AssertNothingLeftAsync(node, pod);
    }

    // Sends until something answers (the bridge and the server come up on their own time); a clone of the request
    // for each try, since a sent HttpRequestMessage cannot be sent again.
    private static async Task<string> SendUntilListeningAsync(HttpClient http, HttpRequestMessage request, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var attempt = new HttpRequestMessage(request.Method, request.RequestUri);
            foreach (var (name, values) in request.Headers)
            {
                attempt.Headers.Add(name, values);
            }
            try
            {
                using var response = await http.SendAsync(attempt);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return await response.Content.ReadAsStringAsync();
            }
            catch (HttpRequestException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(500);
            }
        }
    }

    private static string NetNamespace(int pid) => new FileInfo($"/proc/{pid}/ns/net").LinkTarget!;

    private static async Task WaitForLogLineAsync(string path, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (!(File.Exists(path) && CriLogLine.ReadAll(path).Any(l => l.Stream == "stdout")))
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"no stdout line in {path} within {timeout}");
            }
            await Task.Delay(100);
        }
    }

    // What the pod's removal itself must have cleaned, before the fixture's teardown would hide it; then the teardown.
    private static async Task AssertNothingLeftAsync(CriNode node, Pod pod)
    {
        var pods = await node.Cri.Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), deadline: CriClient.Deadline());
        Assert.Empty(pods.Items);
        Assert.Empty(node.PodCgroups(pod));
        Assert.Empty(Containerd.Testing.HostScanner.FindMounts(node.Containerd.WorkDir));
        await node.DisposeAsync();
        var leftovers = node.Containerd.FindLeftovers();
        Assert.True(leftovers.IsEmpty, leftovers.ToString());
        Assert.Empty(node.Containerd.TeardownProblems);
        Assert.Empty(node.LeftoverNetworkNamespaces());
    }
}
