// Load test of the wasi:http server: the echo component behind WasiHttpServer, side by side with a plain Kestrel
// hello-world in the same process and run, both driven over loopback by the same HttpClient load loop.
// Usage: bench-http <http-echo.wasm or .cwasm> [requests=2000] [concurrency=16]
//        bench-http serve <component>   (HttpProxyRunner as the shim runs it: address from the environment, signals)
//        bench-http compile <component.wasm> <out.cwasm>
using System.Diagnostics;
using System.Net;
using Containerd.Shim.Wasmtime.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

if (args[0] == "compile")
{
    // bench-http compile <component.wasm> <out.cwasm>: the artifact the other modes load without compiling.
    File.WriteAllBytes(args[2], WasiHttpServer.Precompile(File.ReadAllBytes(args[1])));
    return 0;
}
if (args[0] == "serve")
{
    var bytes = File.ReadAllBytes(args[1]);
    var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
        .Select(e => ((string)e.Key, (string)e.Value!));
    return HttpProxyRunner.Run(bytes, args[1].EndsWith(".cwasm", StringComparison.Ordinal), env, Path.GetFileName(args[1]));
}

var component = args[0];
var requests = args.Length > 1 ? int.Parse(args[1]) : 2000;
var concurrency = args.Length > 2 ? int.Parse(args[2]) : 16;

var echo = await WasiHttpServer.StartAsync(File.ReadAllBytes(component), new IPEndPoint(IPAddress.Loopback, 0),
    precompiled: component.EndsWith(".cwasm", StringComparison.Ordinal));
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
var plain = builder.Build();
plain.Run(context => context.Response.WriteAsync("hello, world\n"));
await plain.StartAsync();

var echoUrl = echo.Addresses.Single() + "/bench?x=1";
var plainUrl = plain.Urls.Single() + "/bench?x=1";
Console.WriteLine($"load: {File.ReadAllText("/proc/loadavg").Trim()}");
foreach (var (name, url) in new[] { ("kestrel-hello", plainUrl), ("wasi-http-echo", echoUrl) })
{
    await Measure(name, url, Math.Max(50, requests / 10), concurrency, print: false); // warm-up
}
var results = new Dictionary<string, (double Rps, double P50, double P95, double Cpu)>();
foreach (var (name, url) in new[] { ("kestrel-hello", plainUrl), ("wasi-http-echo", echoUrl) })
{
    results[name] = await Measure(name, url, requests, concurrency, print: true);
}
var (k, e) = (results["kestrel-hello"], results["wasi-http-echo"]);
Console.WriteLine($"ratio echo/kestrel: req/s {e.Rps / k.Rps:F3}, p95 {e.P95 / k.P95:F1}x, cpu per request {e.Cpu / k.Cpu:F1}x");
await plain.StopAsync();
await echo.DisposeAsync();
return 0;

static async Task<(double, double, double, double)> Measure(string name, string url, int requests, int concurrency, bool print)
{
    using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency });
    var latencies = new double[requests];
    // CPU time of the whole process (server, guest and client) per request: steadier than req/s on a shared machine.
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var next = -1;
    var failures = 0;
    var total = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < requests)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync(url);
            await response.Content.ReadAsByteArrayAsync();
            if (!response.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref failures);
            }
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
    }));
    var seconds = total.Elapsed.TotalSeconds;
    var cpuPerRequest = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / requests;
    Array.Sort(latencies);
    var rps = requests / seconds;
    var p50 = latencies[requests / 2];
    var p95 = latencies[(int)(requests * 0.95)];
    if (print)
    {
        Console.WriteLine($"{name}: {requests} requests, {concurrency} clients, {failures} failed: {rps:F0} req/s, p50 {p50:F2} ms, p95 {p95:F2} ms, cpu {cpuPerRequest:F3} ms/request");
    }
    if (failures > 0)
    {
        throw new InvalidOperationException($"{name}: {failures} requests failed");
    }
    return (rps, p50, p95, cpuPerRequest);
}
