using System.Diagnostics;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// The daemon's own life: a second daemon on the same socket refuses to start, containerd sees every task exit when
/// the daemon dies, and a restarted daemon starts clean. A daemon of its own, since these tests kill it.
/// </summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SharedModeDaemonTests(SharedModeDaemonTests.Fixture fx) : IClassFixture<SharedModeDaemonTests.Fixture>
{
    private const string Demo = "/wasi-demo-app.wasm";

    /// <summary>A fixture of its own (its daemon gets killed).</summary>
    public sealed class Fixture : SharedModeFixture
    {
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_socket_refuses_to_start()
    {
        var result = await ProcessRunner.RunAsync(Path.Combine(fx.BinDir, "containerd-wasmtimed"), ["--socket", fx.ManagerSocket],
            timeout: TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("already serves", result.Stderr);
        Assert.True(fx.DaemonPid > 0);
        Assert.Equal(0u, (await fx.StatusAsync()).Sandboxes);
    }

    [Fact]
    public async Task Tasks_exit_when_the_daemon_dies_and_a_restarted_daemon_starts_clean()
    {
        var ids = new[] { SharedModeTests.NewId("orphan1"), SharedModeTests.NewId("orphan2") };
        try
        {
            foreach (var id in ids)
            {
                await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "daemon");
            }
            foreach (var id in ids)
            {
                await SharedModeTests.WaitUntilAsync(async () => (await TaskLineAsync(id)).Contains("RUNNING"), $"{id} RUNNING");
            }
            await fx.StopDaemonAsync(kill: true);

            // containerd notices the dead connections, runs the client shim's delete and reports the tasks gone.
            foreach (var id in ids)
            {
                await SharedModeTests.WaitUntilAsync(async () => !(await TaskLineAsync(id)).Contains("RUNNING"), $"{id} no longer RUNNING");
            }

            await fx.StartDaemonAsync();
            var status = await fx.StatusAsync();
            Assert.Equal(0u, status.Sandboxes);
            Assert.Empty(Directory.EnumerateFileSystemEntries(fx.SandboxSocketDir));

            var after = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("reborn"), [Demo, "echo", "again"]);
            Assert.Equal("again\n", after.Stdout);
        }
        finally
        {
            foreach (var id in ids)
            {
                await fx.Containerd.CtrAsync("task", "delete", "--force", id);
                await fx.Containerd.CtrAsync("container", "delete", id);
            }
        }
    }

    [Fact]
    public async Task A_restarted_daemon_loads_what_it_compiled_from_its_cache_folder_instead_of_compiling()
    {
        var first = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("cache1"), [Demo, "echo", "one"]);
        Assert.True(first.Succeeded, first + fx.DaemonLog());
        // The artifact is in the daemon's own folder, under its own engine name, root's alone.
        var artifacts = Directory.EnumerateFiles(Path.Combine(fx.CacheDir, "wasmtimed"), "*", SearchOption.AllDirectories).ToList();
        Assert.NotEmpty(artifacts);
        Assert.All(artifacts, a => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(a)));
        var logged = CompileLines();

        await fx.StopDaemonAsync(kill: false);
        await fx.StartDaemonAsync();
        Assert.Equal(0ul, (await fx.StatusAsync()).Compilations);
        var again = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("cache2"), [Demo, "echo", "two"]);

        Assert.True(again.Succeeded, again + fx.DaemonLog());
        Assert.Equal("two\n", again.Stdout);
        Assert.Equal(0ul, (await fx.StatusAsync()).Compilations);
        Assert.Equal(logged, CompileLines());

        // A corrupt artifact is a miss: the next daemon compiles once and replaces it, and the container still runs.
        await fx.StopDaemonAsync(kill: false);
        foreach (var a in artifacts)
        {
            File.WriteAllBytes(a, [1, 2, 3]);
        }
        await fx.StartDaemonAsync();
        var recompiled = await fx.RunAsync(SharedModeFixture.TestImageName, SharedModeTests.NewId("cache3"), [Demo, "echo", "three"]);
        Assert.True(recompiled.Succeeded, recompiled + fx.DaemonLog());
        Assert.Equal("three\n", recompiled.Stdout);
        Assert.Equal(1ul, (await fx.StatusAsync()).Compilations);
        Assert.Equal(logged.Count + 1, CompileLines().Count);
    }

    private List<string> CompileLines() => File.Exists(fx.CompileLog) ? [.. File.ReadAllLines(fx.CompileLog)] : [];

    [Fact]
    public async Task Manager_and_sandbox_sockets_are_0600_and_refuse_another_uid()
    {
        const int nobody = 65534;
        var id = SharedModeTests.NewId("sock");
        try
        {
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", SharedModeFixture.Runtime, SharedModeFixture.TestImageName, id, Demo, "daemon");
            await SharedModeTests.WaitUntilAsync(async () => (await TaskLineAsync(id)).Contains("RUNNING"), $"{id} RUNNING");
            var sockets = Directory.EnumerateFiles(fx.SandboxSocketDir).Prepend(fx.ManagerSocket).ToList();
            Assert.True(sockets.Count >= 2, string.Join(", ", sockets));

            foreach (var socket in sockets)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
                Assert.Equal(OtherUserProbe.Outcome.RefusedByMode, await OtherUserProbe.RunAsync(socket, nobody));
            }
            // Widened by hand, the daemon's own peer check still drops the stranger and answers root.
            File.SetUnixFileMode(fx.ManagerSocket, (UnixFileMode)0b110_110_110);
            try
            {
                Assert.Equal(OtherUserProbe.Outcome.ClosedByServer, await OtherUserProbe.RunAsync(fx.ManagerSocket, nobody));
                Assert.Equal(OtherUserProbe.Outcome.Answered, await OtherUserProbe.RunAsync(fx.ManagerSocket, uid: null));
            }
            finally
            {
                File.SetUnixFileMode(fx.ManagerSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    private async Task<string> TaskLineAsync(string id) =>
        (await fx.Containerd.RunCtrAsync("task", "ls")).Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";
}
