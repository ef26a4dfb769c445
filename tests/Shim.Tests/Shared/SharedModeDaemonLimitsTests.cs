using System.Net;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests.Shared;

/// <summary>
/// The daemon's own bounds, across tenants, through a private containerd and a daemon of its own. Guest threads
/// (<c>CONTAINERD_WASMTIMED_MAX_GUEST_THREADS</c>, two here): a third command container is refused at Create naming
/// the cap and leaves nothing behind, and a proxy's request past the cap gets 503 while the proxy stays up; both
/// work again once a thread is given back. Compiled programs in memory (<c>CONTAINERD_WASMTIMED_MAX_IDLE_PROGRAMS</c>,
/// one here): a program no container uses is evicted when another goes idle, one in use never is, and an evicted
/// binary comes back from the artifact folder without a compile. Open wasi:http connections
/// (<c>CONTAINERD_WASMTIMED_MAX_CONNECTIONS</c>, four here): a fifth is closed unanswered until one of the four goes.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SharedModeDaemonLimitsTests(SharedModeDaemonLimitsTests.Fixture fx, ITestOutputHelper output)
    : IClassFixture<SharedModeDaemonLimitsTests.Fixture>
{
    private const string Demo = "/wasi-demo-app.wasm";
    private const string Variable = "CONTAINERD_WASMTIMED_MAX_GUEST_THREADS";

    /// <summary>A daemon with two guest threads and one idle program in memory.</summary>
    public sealed class Fixture : SharedModeFixture
    {
        /// <inheritdoc/>
        protected override IReadOnlyDictionary<string, string> DaemonEnvironment { get; } = new Dictionary<string, string>
        {
            [Variable] = "2",
            ["CONTAINERD_WASMTIMED_MAX_IDLE_PROGRAMS"] = "1",
            ["CONTAINERD_WASMTIMED_MAX_CONNECTIONS"] = "4",
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
        var run = SharedModeHttpLimitsTests.RunProxyAsync(fx, SharedModeHttpLimitsTests.SpinImage, SharedModeHttpLimitsTests.SpinModule, proxy, netns);
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
            await SharedModeHttpLimitsTests.StopProxyAsync(fx, proxy, run);
        }
    }

    [Fact]
    public async Task Idle_programs_past_the_bound_are_evicted_and_one_in_use_never_is()
    {
        // The demo (a binary, kept in the artifact folder) and a text module (memory only).
        var demo = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("idle-demo"), [Demo, "echo", "demo"]);
        Assert.True(demo.Succeeded, demo + fx.DaemonLog());
        Assert.Contains("idle programs kept in memory: 1", fx.DaemonLog());
        Assert.Equal(1u, (await fx.StatusAsync()).CachedModules);
        var env = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("idle-env"), ["/env.wat"]);
        Assert.True(env.Succeeded, env + fx.DaemonLog());
        // The demo went idle first: it is the one evicted.
        Assert.Equal(1u, (await fx.StatusAsync()).CachedModules);

        // The demo is loaded again from the folder, not compiled.
        var compilations = (await fx.StatusAsync()).Compilations;
        var sleeper = SharedModeTests.NewId("idle-sleep");
        try
        {
            await SleepAsync(sleeper);
            Assert.Equal(compilations, (await fx.StatusAsync()).Compilations);
            // In use, the demo stays while the text module comes and goes idle beside it.
            var again = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("idle-env"), ["/env.wat"]);
            Assert.True(again.Succeeded, again + fx.DaemonLog());
            var status = await fx.StatusAsync();
            output.WriteLine($"compilations {status.Compilations}, programs in memory {status.CachedModules}");
            Assert.Equal(2u, status.CachedModules);
            Assert.Equal(compilations, status.Compilations);
            Assert.Contains(sleeper, await fx.Containerd.RunCtrAsync("task", "ls"));
        }
        finally
        {
            await SharedModeResourceTests.KillAndDeleteAsync(fx, sleeper);
        }
        // Both idle now: one is kept.
        Assert.Equal(1u, (await fx.StatusAsync()).CachedModules);
    }

    [Fact]
    public async Task A_connection_past_the_daemons_cap_is_closed_unanswered_until_one_goes()
    {
        await SharedModeHttpLimitsTests.ImportAsync(fx, "shared-http-limits", SharedModeHttpLimitsTests.SpinImage,
            SharedModeHttpLimitsTests.SpinModule, HttpLimitsComponent.PathOf);
        await using var netns = await NetNs.CreateAsync();
        var proxy = SharedModeTests.NewId("cap-conn");
        var run = SharedModeHttpLimitsTests.RunProxyAsync(fx, SharedModeHttpLimitsTests.SpinImage, SharedModeHttpLimitsTests.SpinModule, proxy, netns);
        var held = new List<System.Net.Sockets.Socket>();
        try
        {
            await SharedModeHttpLimitsTests.WaitServingAsync(fx, netns, run);
            var address = new IPEndPoint(IPAddress.Loopback, 8080);
            for (var i = 0; i < 4; i++)
            {
                held.Add(await netns.ConnectAsync(address));
            }
            // The four are Kestrel's now (accepted and counted) before the fifth comes.
            await Task.Delay(TimeSpan.FromMilliseconds(500));
            using (var fifth = await netns.ConnectAsync(address))
            {
                var buffer = new byte[256];
                var read = 0;
                try
                {
                    await fifth.SendAsync("GET /fifth HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray());
                    read = await ReceiveOrResetAsync(fifth, buffer).WaitAsync(TimeSpan.FromSeconds(5));
                }
                catch (System.Net.Sockets.SocketException)
                {
                    // Reset before the request went out: closed all the same.
                }
                Assert.True(read == 0, $"the fifth connection was answered: {System.Text.Encoding.ASCII.GetString(buffer, 0, read)}");
            }
            held[0].Dispose();
            held.RemoveAt(0);
            await Task.Delay(TimeSpan.FromMilliseconds(500));
            var again = await SharedModeHttpLimitsTests.CurlAsync(netns, "http://127.0.0.1:8080/again");
            Assert.True(again.Succeeded, again + fx.DaemonLog());
            Assert.Equal("ok\n", again.Stdout);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
            await SharedModeHttpLimitsTests.StopProxyAsync(fx, proxy, run);
        }
    }

    // 0 once the server has closed the connection (a reset counts as closed).
    private static async Task<int> ReceiveOrResetAsync(System.Net.Sockets.Socket socket, byte[] buffer)
    {
        try
        {
            return await socket.ReceiveAsync(buffer);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return 0;
        }
    }

    private async Task SleepAsync(string id)
    {
        await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "sleep", "3600");
        await SharedModeTests.WaitUntilAsync(async () => (await fx.Containerd.RunCtrAsync("task", "ls")).Contains(id + " "), $"{id} running");
    }
}
