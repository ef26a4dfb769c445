using System.Diagnostics;
using System.Globalization;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// A wasi:http/proxy component as a long-running container, through a private containerd and <c>ctr run</c>: the
/// instance serves on the address from its environment inside the container's own network namespace, answers GET and
/// POST over one keep-alive connection (curl run in that namespace with nsenter), and ends on SIGINT with 0 after
/// draining, or on SIGTERM with 143.
/// </summary>
[Trait("Category", "Integration")]
public sealed class HttpComponentTests(PrecompileFixture fx) : IClassFixture<PrecompileFixture>
{
    private const string Image = "localhost/runwasi-dotnet/http-echo:latest";
    private const string Module = "/http-echo.wasm";
    private const string FetchImage = "localhost/runwasi-dotnet/http-fetch:latest";
    private const string FetchModule = "/http-fetch.wasm";

    // The ~13 MB component compiles at every start (its artifact is not cached yet): seconds idle, a minute loaded.
    private static readonly TimeSpan ServeTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Proxy_component_answers_get_and_post_on_one_connection_and_sigint_drains_to_exit_0()
    {
        await ImportAsync();
        var id = WasmShimFixture.NewId("http-int");
        var run = RunAsync(id);
        try
        {
            var pid = await WaitForPidAsync(id, run);
            var get = await CurlAsync(pid, run, ["-H", "x-echo: from-ctr", "http://127.0.0.1:8080/hello?x=1"]);
            Assert.Equal("method=GET\npath=/hello?x=1\nx-echo=from-ctr\n\n", get.Stdout);

            // Two requests in one curl: the second reuses the first's connection (HTTP/1.1 keep-alive).
            var both = await CurlAsync(pid, run, ["-v", "-H", "x-echo: kept", "-d", "posted body", "http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b"]);
            Assert.Equal("method=POST\npath=/a\nx-echo=kept\n\nposted body" + "method=POST\npath=/b\nx-echo=kept\n\nposted body", both.Stdout);
            Assert.Contains("Re-using existing connection", both.Stderr);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 0, exit.ToString());
            Assert.Contains("serving wasi:http on", exit.Stderr);
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task Sigterm_ends_a_serving_proxy_component_with_143()
    {
        await ImportAsync();
        var id = WasmShimFixture.NewId("http-term");
        var run = RunAsync(id);
        try
        {
            var pid = await WaitForPidAsync(id, run);
            var get = await CurlAsync(pid, run, ["http://127.0.0.1:8080/"]);
            Assert.StartsWith("method=GET\npath=/\n", get.Stdout);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGTERM", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 143, exit.ToString());
        }
        finally
        {
            await CleanUpAsync(id, run);
        }
    }

    [Fact]
    public async Task Proxy_component_fetches_from_a_server_in_its_network_namespace()
    {
        _ = HttpFetchComponent.Wasm; // builds it when `make` has not
        await ImportAsync("http-fetch", FetchImage, FetchModule, HttpFetchComponent.PathOf);
        var id = WasmShimFixture.NewId("http-out");
        var run = RunAsync(id, FetchImage, FetchModule);
        var site = Directory.CreateTempSubdirectory("http-out-");
        Process? upstream = null;
        try
        {
            var pid = await WaitForPidAsync(id, run);
            // The upstream: busybox's httpd, started inside the container's network namespace (which has only lo).
            await File.WriteAllTextAsync(Path.Combine(site.FullName, "greeting.txt"), "hello from the container's netns\n");
            upstream = Process.Start(new ProcessStartInfo("nsenter",
                [$"--net=/proc/{pid}/ns/net", TestImages.BusyboxBinaryPath, "httpd", "-f", "-p", "127.0.0.1:8081", "-h", site.FullName])
            {
                RedirectStandardError = true,
            })!;

            var url = Uri.EscapeDataString("http://127.0.0.1:8081/greeting.txt");
            var get = await CurlAsync(pid, run, ["-i", $"http://127.0.0.1:8080/relay?url={url}"]);
            Assert.Contains("HTTP/1.1 200 OK", get.Stdout);
            Assert.EndsWith("\r\n\r\nhello from the container's netns\n", get.Stdout);

            // Nothing listens on 8082 in that namespace: the guest's fetch fails and it answers 502.
            var refused = await CurlAsync(pid, run, ["-i", $"http://127.0.0.1:8080/relay?url={Uri.EscapeDataString("http://127.0.0.1:8082/")}"]);
            Assert.Contains("HTTP/1.1 502", refused.Stdout);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGINT", id);
            var exit = await run.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.True(exit.ExitCode == 0, exit.ToString());
        }
        finally
        {
            if (upstream is not null)
            {
                if (!upstream.HasExited)
                {
                    upstream.Kill(entireProcessTree: true);
                }
                await upstream.WaitForExitAsync();
                upstream.Dispose();
            }
            await CleanUpAsync(id, run);
            site.Delete(recursive: true);
        }
    }

    private Task ImportAsync()
    {
        _ = HttpEchoComponent.Wasm; // builds it when `make` has not
        return ImportAsync("http-echo", Image, Module, HttpEchoComponent.PathOf);
    }

    private async Task ImportAsync(string name, string imageName, string module, string component)
    {
        var image = TestImages.Build(name, new ImageDefinition
        {
            Name = imageName,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig { Entrypoint = [module] },
            Layers = [new FilesystemLayer([LayerEntry.File(module.TrimStart('/'), component, Modes.Executable)])],
        });
        await fx.Containerd.ImportAsync(image.TarPath);
    }

    // Without --net-host, ctr gives the container a network namespace of its own (only lo, which the shim brings up).
    private Task<ProcessResult> RunAsync(string id, string image = Image, string module = Module) =>
        fx.Containerd.CtrAsync(["run", "--rm", "--runtime", WasmShimFixture.Runtime,
            "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080", image, id, module], ServeTimeout + TimeSpan.FromMinutes(2));

    private async Task<int> WaitForPidAsync(string id, Task<ProcessResult> run)
    {
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (DateTime.UtcNow < until)
        {
            if (run.IsCompleted)
            {
                Assert.Fail($"ctr run ended before the task ran: {await run}");
            }
            var tasks = await fx.Containerd.RunCtrAsync("task", "ls");
            var line = tasks.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .FirstOrDefault(f => f.Length >= 3 && f[0] == id && f[2] == "RUNNING");
            if (line is not null)
            {
                return int.Parse(line[1], CultureInfo.InvariantCulture);
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"task {id} never ran");
    }

    // curl inside the instance's network namespace, retried until the component (compiled at start) listens.
    private static async Task<ProcessResult> CurlAsync(int pid, Task<ProcessResult> run, string[] args)
    {
        var until = DateTime.UtcNow + ServeTimeout;
        while (true)
        {
            var result = await ProcessRunner.RunAsync("nsenter", [$"--net=/proc/{pid}/ns/net", "curl", "-sS", "--max-time", "30", .. args],
                timeout: TimeSpan.FromMinutes(1));
            if (result.Succeeded)
            {
                return result;
            }
            if (run.IsCompleted)
            {
                Assert.Fail($"the container ended while curl waited for it: {await run}\ncurl: {result}");
            }
            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"nothing answered on 127.0.0.1:8080 in the container within {ServeTimeout}: {result}");
            }
            await Task.Delay(500);
        }
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
}
