using System.Net;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// The daemon's cap on guest threads (<c>CONTAINERD_WASMTIMED_MAX_GUEST_THREADS</c>), across tenants, through a
/// private containerd and a daemon of its own capped at two: a third command container is refused at Create naming
/// the cap and leaves nothing behind, and a proxy's request past the cap gets 503 while the proxy stays up; both
/// work again once a thread is given back.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SharedModeThreadCapTests(SharedModeThreadCapTests.Fixture fx, ITestOutputHelper output)
    : IClassFixture<SharedModeThreadCapTests.Fixture>
{
    private const string Demo = "/wasi-demo-app.wasm";
    private const string Variable = "CONTAINERD_WASMTIMED_MAX_GUEST_THREADS";

    /// <summary>A daemon with two guest threads.</summary>
    public sealed class Fixture : SharedModeFixture
    {
        /// <inheritdoc/>
        protected override IReadOnlyDictionary<string, string> DaemonEnvironment { get; } = new Dictionary<string, string>
        {
            [Variable] = "2",
        };
    }

    [Fact]
    public async Task A_command_past_the_cap_is_refused_naming_it_and_runs_once_a_thread_is_free()
    {
        var first = SharedModeTests.NewId("cap-a");
        var second = SharedModeTests.NewId("cap-b");
        var third = SharedModeTests.NewId("cap-c");
        try
        {
            await SleepAsync(first);
            await SleepAsync(second);
            Assert.Contains("guest threads: at most 2", fx.DaemonLog());

            var refused = await fx.Containerd.CtrAsync(
                ["run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, third, Demo, "echo", "no"]);
            output.WriteLine(refused.ToString());
            Assert.False(refused.Succeeded, refused.ToString());
            Assert.Contains(Variable, refused.Stderr);
            Assert.Contains("already runs 2 guest threads", refused.Stderr);
            // No task was left for the refused container.
            Assert.DoesNotContain(third, await fx.Containerd.RunCtrAsync("task", "ls"));
            await fx.Containerd.CtrAsync("container", "rm", third);

            // One sleeper gone, its thread is back: the third runs.
            await SharedModeResourceTests.KillAndDeleteAsync(fx, first);
            var ran = await fx.RunAsync(SharedModeFixture.TestImageName, third, [Demo, "echo", "yes"]);
            Assert.True(ran.Succeeded, ran + fx.DaemonLog());
            Assert.Equal("yes\n", ran.Stdout);
        }
        finally
        {
            foreach (var id in new[] { first, second })
            {
                await SharedModeResourceTests.KillAndDeleteAsync(fx, id);
            }
            await fx.Containerd.CtrAsync("container", "rm", third);
        }
    }

    [Fact]
    public async Task A_request_past_the_cap_gets_503_and_the_proxy_answers_once_a_thread_is_free()
    {
        await SharedModeHttpLimitsTests.ImportAsync(fx, "shared-http-limits", SharedModeHttpLimitsTests.SpinImage,
            SharedModeHttpLimitsTests.SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var sleeper = SharedModeTests.NewId("cap-sleep");
        var proxy = SharedModeTests.NewId("cap-proxy");
        var run = fx.RunAsync(SharedModeHttpLimitsTests.SpinImage, proxy, [SharedModeHttpLimitsTests.SpinModule],
            ["--with-ns", $"network:{netns.Path}", "--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080"], TimeSpan.FromMinutes(7));
        try
        {
            await SharedModeHttpLimitsTests.WaitServingAsync(fx, netns, run);
            // One thread for a sleeping command, one for a request whose guest sleeps: the cap is reached.
            await SleepAsync(sleeper);
            using var client = SharedModeHttpLimitsTests.ClientIn(netns);
            var asleep = client.GetAsync("/sleep");
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.False(asleep.IsCompleted);

            using (var refused = await client.GetAsync("/past-the-cap"))
            {
                var body = await refused.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Contains(Variable, body);
                Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
            }

            await SharedModeResourceTests.KillAndDeleteAsync(fx, sleeper);
            Assert.Equal("ok\n", await client.GetStringAsync("/again"));
            Assert.False(run.IsCompleted);
        }
        finally
        {
            await SharedModeResourceTests.KillAndDeleteAsync(fx, sleeper);
            if (!run.IsCompleted)
            {
                await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", proxy);
                await run.WaitAsync(TimeSpan.FromMinutes(1)).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            await fx.Containerd.CtrAsync("container", "rm", proxy);
        }
    }

    private async Task SleepAsync(string id)
    {
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "sleep", "3600");
        await SharedModeTests.WaitUntilAsync(async () => (await fx.Containerd.RunCtrAsync("task", "ls")).Contains(id + " "), $"{id} running");
    }
}
