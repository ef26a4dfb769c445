using System.Net;
using System.Text;
using Containerd.Shim.Wasm;
using Containerd.Shim.Wasmtime;
using Containerd.Shim.Wasmtime.Http;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The wasi:http server in process: Kestrel on a loopback port, the echo component (real componentize-js output)
/// behind it, requests made over real TCP.
/// </summary>
public sealed class WasiHttpServerTests : IAsyncLifetime
{
    private WasiHttpServer? _server;
    private HttpClient? _client;

    public async Task InitializeAsync()
    {
        _server = await WasiHttpServer.StartAsync(HttpEchoComponent.Precompiled, new IPEndPoint(IPAddress.Loopback, 0), precompiled: true);
        _client = new HttpClient { BaseAddress = new Uri(_server.Addresses.Single()), Timeout = TimeSpan.FromMinutes(2) };
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task GetIsAnsweredByTheComponent()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/hello/world?x=1&y=two");
        request.Headers.Add("x-echo", "spike");
        using var response = await _client!.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("method=GET\npath=/hello/world?x=1&y=two\nx-echo=spike\n\n", body);
        Assert.Equal("GET", response.Headers.GetValues("x-echo-method").Single());
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task EnginesPrecompileOfAProxyComponentGivesAnArtifactTheHttpHostServes()
    {
        // The engine's proxy compiler must compile for the wasi:http host's engine, not the command engine.
        using var engine = new WasmtimeHttpEngine();
        var compiler = engine.ProxyCompiler;
        using var proxy = compiler.Compile(new ProgramSource("echo", HttpEchoComponent.Wasm, ModuleFormat.Component));
        var artifact = compiler.Serialize(proxy);
        await using var server = await WasiHttpServer.StartAsync(artifact, new IPEndPoint(IPAddress.Loopback, 0), precompiled: true);
        using var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromMinutes(2) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/precompiled");
        request.Headers.Add("x-echo", "ahead");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("method=GET\npath=/precompiled\nx-echo=ahead\n\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PostBodyIsEchoed()
    {
        var payload = string.Concat(Enumerable.Range(0, 5000).Select(i => $"line {i}\n"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/echo") { Content = new StringContent(payload, Encoding.UTF8) };
        request.Headers.Add("x-echo", "post");
        using var response = await _client!.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("method=POST\npath=/echo\nx-echo=post\n\n" + payload, body);
    }

    [Fact]
    public async Task KeepAliveConnectionServesManyRequestsEachWithAFreshInstance()
    {
        // One HttpClient reuses its connection; every answer is right, so every request got a working instance.
        for (var i = 0; i < 20; i++)
        {
            var body = await _client!.GetStringAsync($"/n/{i}");
            Assert.StartsWith($"method=GET\npath=/n/{i}\n", body);
        }
    }

    [Fact]
    public async Task ConcurrentRequestsAllSucceed()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var response = await _client!.PostAsync($"/c/{i}", new StringContent($"body {i}"));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync(), i);
        }));
        Assert.All(results, r =>
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal($"method=POST\npath=/c/{r.i}\nx-echo=\n\nbody {r.i}", r.Body);
        });
    }

    [Fact]
    public async Task AThousandRequestsFromSixteenClientsAllSucceed()
    {
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16 })
        {
            BaseAddress = _client!.BaseAddress,
            Timeout = TimeSpan.FromMinutes(5),
        };
        var next = -1;
        var bad = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < 1000)
            {
                using var response = await client.GetAsync($"/load/{i}");
                var body = await response.Content.ReadAsStringAsync();
                if (response.StatusCode != HttpStatusCode.OK || !body.StartsWith($"method=GET\npath=/load/{i}\n", StringComparison.Ordinal))
                {
                    bad.Add($"{i}: {(int)response.StatusCode} {body}");
                }
            }
        }));
        Assert.Empty(bad);
    }

    [Theory]
    [InlineData(null, "0.0.0.0:8080")]
    [InlineData("127.0.0.1:3000", "127.0.0.1:3000")]
    [InlineData("[::1]:81", "[::1]:81")]
    [InlineData("9090", "0.0.0.0:9090")]
    public void ListenAddressFollowsRunwasisVariable(string? value, string expected) =>
        Assert.Equal(expected, WasiHttpServer.ParseAddress(value).ToString());

    [Fact]
    public void BadListenAddressIsRefused() =>
        Assert.Throws<FormatException>(() => WasiHttpServer.ParseAddress("localhost:http"));
}
