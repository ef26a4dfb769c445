using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// wasi:http/proxy components in the shared-mode daemon, through a private containerd: each container gets a network
/// namespace the test made (<c>ip netns add</c>, handed to ctr as <c>--with-ns network:path</c>, as a CRI pod's is),
/// and the daemon, which stays in the host's namespace, serves the component inside it. curl runs in that
/// namespace (nsenter). SIGINT drains (a request in flight completes) to 0, SIGTERM ends with 143, two containers
/// serve the same port in two namespaces at once from one compile, a stopped container leaves no listener,
/// netns descriptor or thread, and a component's outgoing requests leave from its container's namespace.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeHttpTests(SharedModeFixture fx)
{
    private const string Image = "localhost/runwasi-dotnet/shared-http-echo:latest";
    internal const string Module = "/http-echo.wasm";

    // The ~13 MB component compiles at the first Create in the daemon (seconds idle, a minute loaded).
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Proxy_component_answers_get_and_post_in_the_containers_netns_and_sigint_drains_to_exit_0()
    {
        await ImportAsync();
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("shttp-int");
        var run = RunAsync(id, netns);
        try
        {
            var get = await CurlAsync(netns, run, ["-H", "x-echo: from-shared", "http://127.0.0.1:8080/hello?x=1"]);
            Assert.Equal("method=GET\npath=/hello?x=1\nx-echo=from-shared\n\n", get.Stdout);

            // Two requests in one curl: the second reuses the first's connection (HTTP/1.1 keep-alive).
            var both = await CurlAsync(netns, run, ["-v", "-H", "x-echo: kept", "-d", "posted body", "http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b"]);
            Assert.Equal("method=POST\npath=/a\nx-echo=kept\n\nposted body" + "method=POST\npath=/b\nx-echo=kept\n\nposted body", both.Stdout);
            Assert.Contains("Re-using existing connection", both.Stderr);

            // The daemon's own namespace has nothing on the container's address.
            Assert.Empty(await ListenersAsync(null));

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 0, exit + fx.DaemonLog());
            Assert.Contains("serving wasi:http on", exit.Stderr);
            Assert.Empty(await ListenersAsync(netns));
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task Sigint_lets_a_request_in_flight_finish_before_the_task_exits_0()
    {
        await ImportAsync();
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("shttp-drain");
        var run = RunAsync(id, netns);
        try
        {
            // Served at all (the first Create compiles), then a POST whose body the test writes in two parts.
            await CurlAsync(netns, run, ["http://127.0.0.1:8080/up"]);
            var psi = new System.Diagnostics.ProcessStartInfo("nsenter")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { $"--net={netns.Path}", "curl", "-sS", "-v", "--max-time", "120", "-H", "Expect: 100-continue",
                         "-H", "x-echo: drained", "-T", "-", "-X", "POST", "http://127.0.0.1:8080/slow" })
            {
                psi.ArgumentList.Add(arg);
            }
            using var curl = System.Diagnostics.Process.Start(psi)!;
            var stdout = curl.StandardOutput.ReadToEndAsync();
            try
            {
                await curl.StandardInput.WriteAsync("first half, ");
                await curl.StandardInput.FlushAsync();
                // Kestrel answers 100 Continue when the guest starts reading the body: the request is in the guest.
                var seen = new System.Text.StringBuilder();
                while (await curl.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2)) is { } line)
                {
                    seen.AppendLine(line);
                    if (line.Contains("HTTP/1.1 100", StringComparison.Ordinal))
                    {
                        break;
                    }
                }
                Assert.Contains("HTTP/1.1 100", seen.ToString());

                await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
                // The listener closes first, while the request goes on.
                await WaitForNoListenerAsync(netns);
                await curl.StandardInput.WriteAsync("second half");
                curl.StandardInput.Close();
                await curl.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
                Assert.Equal(0, curl.ExitCode);
                Assert.Equal("method=POST\npath=/slow\nx-echo=drained\n\nfirst half, second half", await stdout);
            }
            finally
            {
                if (!curl.HasExited)
                {
                    curl.Kill(entireProcessTree: true);
                }
            }

            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 0, exit + fx.DaemonLog());
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task Two_proxy_containers_serve_the_same_port_in_two_netns_from_one_compile_and_sigterm_ends_them_with_143()
    {
        await ImportAsync();
        await using var first = await NetNs.CreateAsync();
        await using var second = await NetNs.CreateAsync();
        var firstId = NewId("shttp-a");
        var secondId = NewId("shttp-b");
        var firstRun = RunAsync(firstId, first);
        Task<ProcessResult>? secondRun = null;
        try
        {
            var a = await CurlAsync(first, firstRun, ["-H", "x-echo: a", "http://127.0.0.1:8080/a"]);
            Assert.Equal("method=GET\npath=/a\nx-echo=a\n\n", a.Stdout);
            var compilations = (await fx.StatusAsync()).Compilations;

            secondRun = RunAsync(secondId, second);
            var b = await CurlAsync(second, secondRun, ["-H", "x-echo: b", "-d", "to b", "http://127.0.0.1:8080/b"]);
            Assert.Equal("method=POST\npath=/b\nx-echo=b\n\nto b", b.Stdout);
            // Both at once, each in its own namespace, and the second container compiled nothing.
            a = await CurlAsync(first, firstRun, ["http://127.0.0.1:8080/again"]);
            Assert.StartsWith("method=GET\npath=/again\n", a.Stdout);
            Assert.Equal(compilations, (await fx.StatusAsync()).Compilations);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGTERM", firstId);
            var exit = await firstRun.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 143, exit + fx.DaemonLog());
            // The killed container's listener is gone; the other one still serves.
            Assert.Empty(await ListenersAsync(first));
            b = await CurlAsync(second, secondRun, ["http://127.0.0.1:8080/still"]);
            Assert.StartsWith("method=GET\npath=/still\n", b.Stdout);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGTERM", secondId);
            exit = await secondRun.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 143, exit + fx.DaemonLog());
            Assert.Empty(await ListenersAsync(second));
        }
        finally
        {
            await CleanUpAsync(firstId, firstRun);
            if (secondRun is not null)
            {
                await CleanUpAsync(secondId, secondRun);
            }
        }

        // Nothing of either container is left in the daemon: no descriptor of their namespaces (ctr run --rm has
        // deleted both tasks by now), no thread that made their sockets.
        var daemon = fx.DaemonPid;
        Assert.NotEqual(0, daemon);
        var held = NamespaceDescriptors(daemon);
        Assert.DoesNotContain(first.Inode, held);
        Assert.DoesNotContain(second.Inode, held);
        Assert.DoesNotContain(Directory.EnumerateDirectories($"/proc/{daemon}/task"),
            t => File.ReadAllText(Path.Combine(t, "comm")).Trim() == "netns run");
    }

    [Fact]
    public async Task Proxy_components_outgoing_requests_connect_from_the_containers_netns_not_the_daemons()
    {
        _ = HttpFetchComponent.Wasm; // builds it when `make` has not
        var image = TestImages.Build("shared-http-fetch", new ImageDefinition
        {
            Name = FetchImage,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [FetchModule] },
            Layers = [new FilesystemLayer([LayerEntry.File("http-fetch.wasm", HttpFetchComponent.PathOf, Modes.Executable)])],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
        await using var netns = await NetNs.CreateAsync();
        var id = NewId("shttp-out");
        var hostSite = Directory.CreateTempSubdirectory("shttp-out-host-");
        var netnsSite = Directory.CreateTempSubdirectory("shttp-out-netns-");
        await File.WriteAllTextAsync(Path.Combine(hostSite.FullName, "where.txt"), "the daemon's namespace\n");
        await File.WriteAllTextAsync(Path.Combine(netnsSite.FullName, "where.txt"), "the container's namespace\n");
        // Upstreams (busybox httpd): on the host's loopback only at hostOnly; at shared on both loopbacks, answering
        // differently, so a connection made in the wrong namespace cannot pass for the right one.
        var hostOnly = FreeHostPort();
        var shared = FreeHostPort();
        var upstreams = new List<System.Diagnostics.Process>();
        Task<ProcessResult>? run = null;
        try
        {
            upstreams.Add(Httpd([], hostOnly, hostSite));
            upstreams.Add(Httpd([], shared, hostSite));
            upstreams.Add(Httpd(["nsenter", $"--net={netns.Path}"], shared, netnsSite));
            await WaitForListenerAsync(null, hostOnly);
            await WaitForListenerAsync(null, shared);
            await WaitForListenerAsync(netns, shared);

            run = fx.RunAsync(FetchImage, id, [FetchModule],
                ["--with-ns", $"network:{netns.Path}", "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080"],
                ServeTimeout + TimeSpan.FromMinutes(2));
            var inside = await CurlAsync(netns, run, ["-i", RelayUrl(shared)]);
            Assert.Contains("HTTP/1.1 200 OK", inside.Stdout);
            Assert.EndsWith("\r\n\r\nthe container's namespace\n", inside.Stdout);
            // The host's loopback is out of the container's reach, though the daemon runs there.
            var host = await CurlAsync(netns, run, ["-i", RelayUrl(hostOnly)]);
            Assert.Contains("HTTP/1.1 502", host.Stdout);
            Assert.Contains("fetch failed", host.Stdout);
            // And again: the failure left the container's pool usable.
            inside = await CurlAsync(netns, run, ["-i", RelayUrl(shared)]);
            Assert.EndsWith("\r\n\r\nthe container's namespace\n", inside.Stdout);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 0, exit + fx.DaemonLog());
        }
        finally
        {
            foreach (var upstream in upstreams)
            {
                if (!upstream.HasExited)
                {
                    upstream.Kill(entireProcessTree: true);
                }
                await upstream.WaitForExitAsync();
                upstream.Dispose();
            }
            if (run is not null)
            {
                await CleanUpAsync(id, run);
            }
            hostSite.Delete(recursive: true);
            netnsSite.Delete(recursive: true);
        }
        // The lookups and sockets made in the namespace left no descriptor of it in the daemon.
        Assert.NotEqual(0, fx.DaemonPid);
        Assert.DoesNotContain(netns.Inode, NamespaceDescriptors(fx.DaemonPid));
    }

    private const string FetchImage = "localhost/runwasi-dotnet/shared-http-fetch:latest";
    private const string FetchModule = "/http-fetch.wasm";

    private static string RelayUrl(int port) =>
        $"http://127.0.0.1:8080/relay?url={Uri.EscapeDataString($"http://127.0.0.1:{port}/where.txt")}";

    private static int FreeHostPort()
    {
        var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static System.Diagnostics.Process Httpd(string[] prefix, int port, DirectoryInfo site)
    {
        string[] httpd = [TestImages.BusyboxBinaryPath, "httpd", "-f", "-p", $"127.0.0.1:{port}", "-h", site.FullName];
        string[] command = [.. prefix, .. httpd];
        return System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(command[0], command[1..]) { RedirectStandardError = true })!;
    }

    private static async Task WaitForListenerAsync(NetNs? netns, int port)
    {
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while ((await ListenersAsync(netns, port)).Length == 0)
        {
            Assert.True(DateTime.UtcNow < until, $"busybox httpd did not listen on 127.0.0.1:{port} in {netns?.Path ?? "the host's namespace"}");
            await Task.Delay(100);
        }
    }

    private Task ImportAsync() => ImportEchoAsync(fx);

    /// <summary>Imports the echo proxy component's image into the fixture's containerd; returns its name.</summary>
    internal static async Task<string> ImportEchoAsync(SharedModeFixture fx)
    {
        _ = HttpEchoComponent.Wasm; // builds it when `make` has not
        var image = TestImages.Build("shared-http-echo", new ImageDefinition
        {
            Name = Image,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [Module] },
            Layers = [new FilesystemLayer([LayerEntry.File("http-echo.wasm", HttpEchoComponent.PathOf, Modes.Executable)])],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
        return Image;
    }

    private Task<ProcessResult> RunAsync(string id, NetNs netns) =>
        fx.RunAsync(Image, id, [Module],
            ["--with-ns", $"network:{netns.Path}", "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080"],
            ServeTimeout + TimeSpan.FromMinutes(2));

    // curl inside the container's network namespace, retried until the component (compiled at Create) listens.
    private async Task<ProcessResult> CurlAsync(NetNs netns, Task<ProcessResult> run, string[] args)
    {
        var until = DateTime.UtcNow + ServeTimeout;
        while (true)
        {
            var result = await ProcessRunner.RunAsync("nsenter", [$"--net={netns.Path}", "curl", "-sS", "--max-time", "30", .. args],
                timeout: TimeSpan.FromMinutes(1));
            if (result.Succeeded)
            {
                return result;
            }
            if (run.IsCompleted)
            {
                Assert.Fail($"the container ended while curl waited for it: {await run}\ncurl: {result}\n{fx.DaemonLog()}");
            }
            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"nothing answered on 127.0.0.1:8080 in {netns.Path} within {ServeTimeout}: {result}\n{fx.DaemonLog()}");
            }
            await Task.Delay(500);
        }
    }

    // Listening TCP sockets on 127.0.0.1:port in a namespace (null: the host's).
    private static async Task<string[]> ListenersAsync(NetNs? netns, int port = 8080)
    {
        string[] ss = ["ss", "-Hltn", "src", $"127.0.0.1:{port}"];
        var result = netns is null
            ? await ProcessRunner.RunAsync(ss[0], ss[1..], timeout: TimeSpan.FromSeconds(30))
            : await ProcessRunner.RunAsync("nsenter", [$"--net={netns.Path}", .. ss], timeout: TimeSpan.FromSeconds(30));
        Assert.True(result.Succeeded, result.ToString());
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static async Task WaitForNoListenerAsync(NetNs netns)
    {
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while ((await ListenersAsync(netns)).Length > 0)
        {
            Assert.True(DateTime.UtcNow < until, $"the listener in {netns.Path} stayed open after SIGINT");
            await Task.Delay(100);
        }
    }

    // The inodes of the network namespaces a process holds descriptors of.
    private static HashSet<string> NamespaceDescriptors(int pid)
    {
        var inodes = new HashSet<string>();
        foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("net:[", StringComparison.Ordinal))
                {
                    inodes.Add(target[5..^1]);
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }
        return inodes;
    }

    private async Task CleanUpAsync(string id, Task<ProcessResult> run)
    {
        if (!run.IsCompleted)
        {
            await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
            await run.WaitAsync(TimeSpan.FromMinutes(1)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        await fx.Containerd.CtrAsync("container", "rm", id);
    }

    private static string NewId(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
