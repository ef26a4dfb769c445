using System.Diagnostics;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Microsoft.Win32.SafeHandles;
using Xunit;

namespace Shim.Tests;

public class KitReaperTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static ChildProcess Sh(string script, IReadOnlyDictionary<int, System.Runtime.InteropServices.SafeHandle>? files = null,
        IReadOnlyList<string>? env = null, string? cwd = null, bool newSession = false) =>
        Reaper.Spawn(new ProcessStartSpec
        {
            Path = "/bin/sh",
            Args = ["sh", "-c", script],
            Files = files,
            Env = env,
            WorkingDirectory = cwd,
            NewSession = newSession,
        });

    [Fact]
    public async Task Exit_code_is_reported()
    {
        var child = Sh("exit 42");
        var status = await child.Exited.WaitAsync(Timeout);
        Assert.Equal(42, status.ExitCode);
        Assert.True(child.Pid > 0);
        Assert.True(DateTimeOffset.UtcNow - status.ExitedAt < TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Death_by_signal_is_128_plus_signal()
    {
        var child = Sh("sleep 30");
        child.Signal(9);
        var status = await child.Exited.WaitAsync(Timeout);
        Assert.Equal(137, status.ExitCode);
    }

    [Fact]
    public async Task Signal_after_reap_is_not_found()
    {
        var child = Sh("exit 0");
        await child.Exited.WaitAsync(Timeout);
        var e = Assert.Throws<ShimException>(() => child.Signal(15));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, e.Code);
    }

    [Fact]
    public async Task Sigterm_reaches_the_child_with_default_disposition()
    {
        // The runtime ignores SIGPIPE; the child must start with every signal at its default action.
        var child = Sh("kill -PIPE $$; sleep 5");
        var status = await child.Exited.WaitAsync(Timeout);
        Assert.Equal(128 + 13, status.ExitCode);
    }

    [Fact]
    public async Task Mapped_fds_reach_the_child_and_unmapped_stdio_is_dev_null()
    {
        var dir = Directory.CreateTempSubdirectory("kit-reaper-");
        try
        {
            var outPath = Path.Combine(dir.FullName, "out");
            var extraPath = Path.Combine(dir.FullName, "extra");
            using (var outFile = File.OpenHandle(outPath, FileMode.Create, FileAccess.Write))
            using (var extra = File.OpenHandle(extraPath, FileMode.Create, FileAccess.Write))
            {
                var child = Sh("echo hello; echo fd5 >&5; readlink /proc/self/fd/0; ls /proc/self/fd | sort -n | tr '\\n' ' '",
                    new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [1] = outFile, [5] = extra });
                Assert.Equal(0, (await child.Exited.WaitAsync(Timeout)).ExitCode);
            }
            var lines = File.ReadAllLines(outPath);
            Assert.Equal("hello", lines[0]);
            Assert.Equal("/dev/null", lines[1]);
            // ls itself opens one more descriptor (3) for the directory it lists; nothing else leaks.
            Assert.Equal("0 1 2 3 5", lines[2].Trim());
            Assert.Equal("fd5", File.ReadAllText(extraPath).Trim());
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task Swapped_fd_mappings_do_not_clobber_each_other()
    {
        var dir = Directory.CreateTempSubdirectory("kit-reaper-");
        try
        {
            var a = Path.Combine(dir.FullName, "a");
            var b = Path.Combine(dir.FullName, "b");
            int faNumber, fbNumber;
            using (var ha = File.OpenHandle(a, FileMode.Create, FileAccess.Write))
            using (var hb = File.OpenHandle(b, FileMode.Create, FileAccess.Write))
            {
                // Map each handle onto the other's fd number.
                var fa = (int)ha.DangerousGetHandle();
                var fb = (int)hb.DangerousGetHandle();
                (faNumber, fbNumber) = (fa, fb);
                // bash: dash cannot redirect to descriptors above 9.
                var child = Reaper.Spawn(new ProcessStartSpec
                {
                    Path = "/bin/bash",
                    Args = ["bash", "-c", $"echo to-{fb} >&{fb}; echo to-{fa} >&{fa}"],
                    Files = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [fb] = ha, [fa] = hb },
                });
                Assert.Equal(0, (await child.Exited.WaitAsync(Timeout)).ExitCode);
            }
            // Handle a sits on b's number in the child and vice versa.
            Assert.Equal($"to-{fbNumber}\n", File.ReadAllText(a));
            Assert.Equal($"to-{faNumber}\n", File.ReadAllText(b));
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task Env_cwd_and_new_session_are_applied()
    {
        var dir = Directory.CreateTempSubdirectory("kit-reaper-");
        try
        {
            var outPath = Path.Combine(dir.FullName, "out");
            using (var outFile = File.OpenHandle(outPath, FileMode.Create, FileAccess.Write))
            {
                var child = Sh("echo $FOO; pwd; test $(cut -d' ' -f6 /proc/self/stat) = $$ && echo leader",
                    new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [1] = outFile },
                    env: ["FOO=bar", "PATH=/usr/bin:/bin"], cwd: dir.FullName, newSession: true);
                Assert.Equal(0, (await child.Exited.WaitAsync(Timeout)).ExitCode);
            }
            var lines = File.ReadAllLines(outPath);
            Assert.Equal(["bar", dir.FullName, "leader"], lines);
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void Missing_executable_is_not_found()
    {
        var e = Assert.Throws<ShimException>(() => Reaper.Spawn(new ProcessStartSpec { Path = "/nonexistent/x", Args = ["x"] }));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, e.Code);
        Assert.Contains("/nonexistent/x", e.Message);
    }

    [Fact]
    public async Task The_runtime_does_not_reap_our_children_and_we_do_not_reap_its()
    {
        // System.Diagnostics.Process installs the runtime's SIGCHLD handling; both must still see their own exits.
        var ours = Enumerable.Range(0, 10).Select(i => Sh($"sleep 0.{i}; exit {i + 10}")).ToList();
        var theirs = Enumerable.Range(0, 5).Select(_ => System.Diagnostics.Process.Start("/bin/sh", ["-c", "exit 3"])).ToList();
        foreach (var p in theirs)
        {
            using var cts = new CancellationTokenSource(Timeout);
            await p.WaitForExitAsync(cts.Token);
            Assert.Equal(3, p.ExitCode);
            p.Dispose();
        }
        for (var i = 0; i < ours.Count; i++)
        {
            Assert.Equal(i + 10, (await ours[i].Exited.WaitAsync(Timeout)).ExitCode);
        }
    }

    [Fact]
    public async Task Many_quick_children_are_all_reaped()
    {
        var children = Enumerable.Range(0, 50).Select(i => Sh($"exit {i}")).ToList();
        var statuses = await Task.WhenAll(children.Select(c => c.Exited)).WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 50), statuses.Select(s => s.ExitCode));
    }
}
