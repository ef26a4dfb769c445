using System.Net;
using System.Net.Sockets;
using System.Text;
using Containerd.Shim.Wasmtime.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// Outgoing HTTP from a guest (wasi:http/outgoing-handler) in process: the fetch component behind
/// <see cref="WasiHttpServer"/> relays each request to a plain Kestrel upstream the test runs on loopback, over real
/// TCP both ways.
/// </summary>
public sealed class WasiHttpOutgoingTests : IAsyncLifetime
{
    private WebApplication? _upstream;
    private WasiHttpServer? _server;
    private HttpClient? _client;
    private string _upstreamUrl = "";

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _upstream = builder.Build();
        _upstream.Run(async context =>
        {
            var path = context.Request.Path.Value;
            context.Response.Headers["x-upstream"] = $"saw {context.Request.Method} x-from={context.Request.Headers["x-from"]}";
            switch (path)
            {
                case "/hello":
                    await context.Response.WriteAsync("hello from upstream\n");
                    break;
                case "/echo":
                    await context.Request.Body.CopyToAsync(context.Response.Body);
                    break;
                case "/chunked":
                    // Flushed piece by piece: a chunked response that arrives over time.
                    for (var i = 0; i < 200; i++)
                    {
                        await context.Response.WriteAsync($"{i:D4}{new string('x', 1019)}\n");
                        await context.Response.Body.FlushAsync();
                    }
                    break;
                default:
                    context.Response.StatusCode = 404;
                    await context.Response.WriteAsync("not here\n");
                    break;
            }
        });
        await _upstream.StartAsync();
        _upstreamUrl = _upstream.Urls.Single();

        _server = await WasiHttpServer.StartAsync(HttpFetchComponent.Precompiled, new IPEndPoint(IPAddress.Loopback, 0), precompiled: true);
        _client = new HttpClient { BaseAddress = new Uri(_server.Addresses.Single()), Timeout = TimeSpan.FromMinutes(2) };
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
    }

    private static string Relay(string url) => "/relay?url=" + Uri.EscapeDataString(url);

    [Fact]
    public async Task GetIsFetchedFromTheUpstream()
    {
        using var response = await _client!.GetAsync(Relay(_upstreamUrl + "/hello"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("hello from upstream\n", body);
        // The guest's request header reached the upstream, the upstream's header reached the guest.
        Assert.Equal("saw GET x-from=component", response.Headers.GetValues("x-upstream").Single());
    }

    [Fact]
    public async Task PostBodyGoesUpstreamAndBack()
    {
        var payload = string.Concat(Enumerable.Range(0, 4000).Select(i => $"line {i}\n"));
        using var response = await _client!.PostAsync(Relay(_upstreamUrl + "/echo"), new StringContent(payload, Encoding.UTF8));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(payload, body);
        Assert.Equal("saw POST x-from=component", response.Headers.GetValues("x-upstream").Single());
    }

    [Fact]
    public async Task UpstreamStatusIsPassedOn()
    {
        using var response = await _client!.GetAsync(Relay(_upstreamUrl + "/elsewhere"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not here\n", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ChunkedUpstreamBodyArrivesWhole()
    {
        var body = await _client!.GetStringAsync(Relay(_upstreamUrl + "/chunked"));
        var expected = string.Concat(Enumerable.Range(0, 200).Select(i => $"{i:D4}{new string('x', 1019)}\n"));
        Assert.Equal(expected, body);
    }

    [Fact]
    public async Task RefusedConnectionFailsTheFetch()
    {
        // A port that was just free: nothing listens there.
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();

        using var response = await _client!.GetAsync(Relay($"http://127.0.0.1:{port}/"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.StartsWith("fetch failed:", body);
    }

    [Fact]
    public async Task UnresolvableHostFailsTheFetch()
    {
        // .invalid never resolves (RFC 2606).
        using var response = await _client!.GetAsync(Relay("http://no-such-host.invalid/"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.StartsWith("fetch failed:", body);
    }

    [Fact]
    public async Task ConcurrentRelaysAllSucceed()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(async i =>
        {
            using var response = await _client!.PostAsync(Relay(_upstreamUrl + "/echo"), new StringContent($"body {i}"));
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync(), i);
        }));
        Assert.All(results, r =>
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal($"body {r.i}", r.Body);
        });
    }
}
