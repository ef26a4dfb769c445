using System.Text.Json.Nodes;
using System.Text;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Shim.Tests.Shared;

/// <summary>
/// Shared mode honours or refuses the spec, through containerd and the fixture's daemon: <c>ctr run --read-only</c>
/// leaves the guest a read-only rootfs, <c>--mount type=bind</c> becomes a directory of the guest (read-only when
/// asked, pinned at Create), and what the daemon cannot apply fails Create naming the field, leaving nothing behind.
/// </summary>
[Collection(SharedModeCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SharedModeSpecTests(SharedModeFixture fx) : IDisposable
{
    private const string Image = "localhost/runwasi-dotnet/shared-spec-tests:latest";

    // Preopens in order: fd 3 is the rootfs ("/"), fd 4 the first bind mount.
    private const int RootFd = 3;
    private const int FirstBindFd = 4;

    private static readonly SemaphoreSlim ImportGate = new(1, 1);
    private static string? _importedInto;

    private readonly string _dir = Directory.CreateTempSubdirectory("spec-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Read_only_rootfs_refuses_the_guests_write_and_the_rootfs_is_untouched()
    {
        await ImportAsync();
        var refused = await fx.RunAsync(Image, SharedModeTests.NewId("ro"), ["/write-root.wat"], ["--read-only"]);
        Assert.True(refused.ExitCode is not 0 and < 128, $"the guest's create in a read-only rootfs must fail with an errno: {refused}\n{fx.DaemonLog()}");

        // On the host: the same write lands in a writable container's rootfs and not in a read-only one's.
        Assert.False(await WrittenInRootfsAsync(readOnly: true), "a --read-only container's rootfs was written");
        Assert.True(await WrittenInRootfsAsync(readOnly: false), "the writer did not write a writable rootfs (the check above proves nothing)");
    }

    [Fact]
    public async Task Bind_mount_is_readable_in_the_guest_and_an_ro_bind_is_not_writable()
    {
        await ImportAsync();
        var data = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        File.WriteAllText(Path.Combine(data, "marker"), "hello from the host\n");

        var read = await fx.RunAsync(Image, SharedModeTests.NewId("bind-read"), ["/read-bind.wat"], [.. Bind(data, "ro")]);
        Assert.True(read.Succeeded, read + fx.DaemonLog());
        Assert.Equal("hello from the host\n", read.Stdout);

        var refused = await fx.RunAsync(Image, SharedModeTests.NewId("bind-ro"), ["/write-bind.wat"], [.. Bind(data, "ro")]);
        Assert.True(refused.ExitCode is not 0 and < 128, $"a write into an ro bind must fail with an errno: {refused}");
        Assert.False(File.Exists(Path.Combine(data, "out")), "the guest wrote through an ro bind");

        var written = await fx.RunAsync(Image, SharedModeTests.NewId("bind-rw"), ["/write-bind.wat"], [.. Bind(data, "rw")]);
        Assert.True(written.Succeeded, written + fx.DaemonLog());
        Assert.Equal("written\n", File.ReadAllText(Path.Combine(data, "out")));
    }

    [Fact]
    public async Task A_bind_source_swapped_for_a_symlink_after_create_does_not_change_what_the_guest_sees()
    {
        await ImportAsync();
        var data = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        File.WriteAllText(Path.Combine(data, "marker"), "original\n");
        var other = Directory.CreateDirectory(Path.Combine(_dir, "other")).FullName;
        File.WriteAllText(Path.Combine(other, "marker"), "swapped\n");
        var id = SharedModeTests.NewId("bind-swap");
        // The guest sleeps 3 s before reading: the swap happens while it runs, after Create opened the source.
        var run = fx.RunAsync(Image, id, ["/sleep-read-bind.wat"], [.. Bind(data, "ro")]);
        await WaitRunningAsync(id, run);
        Directory.Move(data, data + ".moved");
        File.CreateSymbolicLink(data, other);
        var result = await run;
        Assert.True(result.Succeeded, result + fx.DaemonLog());
        Assert.Equal("original\n", result.Stdout);
    }

    [Theory]
    [InlineData("process.capabilities.bounding", new[] { "--cap-add", "CAP_SYS_ADMIN" })]
    [InlineData("process.capabilities.bounding", new[] { "--privileged" })]
    [InlineData("linux.seccomp", new[] { "--seccomp" })]
    [InlineData("(/scratch)", new[] { "--mount", "type=tmpfs,src=tmpfs,dst=/scratch,options=nosuid" })]
    public async Task A_field_the_daemon_cannot_apply_fails_create_naming_it_and_leaves_nothing(string field, string[] options) =>
        await AssertRefusedAsync(field, options, "/wasi-demo-app.wasm");

    [Fact]
    public async Task A_user_other_than_root_fails_create_naming_process_user()
    {
        // containerd 1.6's ctr has no --user: the spec is written by hand.
        await using var c = await ConfigContainer.CreateAsync(fx.Containerd, SharedModeFixture.Runtime, "refused-user");
        c.Process["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1000 };
        var before = await fx.StatusAsync();
        var result = await c.RunAsync();
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("process.user", result.Stderr);
        Assert.Contains("normal mode", result.Stderr);
        Assert.DoesNotContain(c.Id, (await fx.Containerd.CtrAsync("task", "ls", "-q")).Stdout);
        Assert.Equal(before.RunningInstances, (await fx.StatusAsync()).RunningInstances);
    }

    [Fact]
    public async Task A_file_bind_other_than_cris_is_refused_and_its_source_is_not_held()
    {
        var file = Path.Combine(_dir, "secret");
        File.WriteAllText(file, "x");
        var dir = Directory.CreateDirectory(Path.Combine(_dir, "data")).FullName;
        // The directory bind before it was opened: the refusal closes it.
        await AssertRefusedAsync("(/etc/secret)",
            [.. Bind(dir, "ro"), "--mount", $"type=bind,src={file},dst=/etc/secret,options=rbind:ro"], "/wasi-demo-app.wasm",
            held: [dir, file]);
    }

    [Fact]
    public async Task A_proxy_asking_for_a_new_network_namespace_is_refused_naming_it()
    {
        var image = await SharedModeHttpTests.ImportEchoAsync(fx);
        // ctr's default spec has a network namespace without a path.
        await AssertRefusedAsync("linux.namespaces[", ["--env", "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:8080"], SharedModeHttpTests.Module,
            image: image, reason: "network");
    }

    private async Task AssertRefusedAsync(string field, string[] options, string module, string[]? held = null,
        string image = Image, string reason = "io.containerd.wasmtime.v1")
    {
        await ImportAsync();
        var daemon = fx.DaemonPid;
        Assert.NotEqual(0, daemon);
        var before = await fx.StatusAsync();
        var id = SharedModeTests.NewId("refused");
        try
        {
            var result = await fx.RunAsync(image, id, [module], options);
            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains(field, result.Stderr);
            Assert.Contains(reason, result.Stderr);
            Assert.Contains("normal mode", result.Stderr);

            var tasks = await fx.Containerd.CtrAsync("task", "ls", "-q");
            Assert.DoesNotContain(id, tasks.Stdout);
            Assert.False(Directory.Exists($"/sys/fs/cgroup/{fx.Containerd.Namespace}/{id}"), "a cgroup of the refused container remains");
            var after = await fx.StatusAsync();
            Assert.Equal(before.RunningInstances, after.RunningInstances);
            var open = DescriptorTargets(daemon);
            foreach (var path in held ?? [])
            {
                Assert.DoesNotContain(path, open);
            }
        }
        finally
        {
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    // Runs the root writer detached, waits for its exit, and looks into its rootfs (still mounted while the stopped
    // task exists) for what it wrote.
    private async Task<bool> WrittenInRootfsAsync(bool readOnly)
    {
        var id = SharedModeTests.NewId(readOnly ? "ro-host" : "rw-host");
        try
        {
            var started = await fx.Containerd.CtrAsync(
                ["run", "-d", "--runtime", SharedModeFixture.Runtime, .. (readOnly ? new[] { "--read-only" } : []), Image, id, "/write-root.wat"]);
            Assert.True(started.Succeeded, started + fx.DaemonLog());
            var until = DateTime.UtcNow.AddSeconds(60);
            while (!(await fx.Containerd.CtrAsync("task", "ls")).Stdout.Split('\n').Any(l => l.StartsWith(id, StringComparison.Ordinal) && l.Contains("STOPPED")))
            {
                Assert.True(DateTime.UtcNow < until, $"{id} did not stop");
                await Task.Delay(100);
            }
            var rootfs = Path.Combine(fx.Containerd.StateDir, "io.containerd.runtime.v2.task", fx.Containerd.Namespace, id, "rootfs");
            Assert.True(File.Exists(Path.Combine(rootfs, "write-root.wat")), $"{rootfs} is not the container's rootfs");
            return File.Exists(Path.Combine(rootfs, "written"));
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "-f", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    private async Task WaitRunningAsync(string id, Task<ProcessResult> run)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!(await fx.Containerd.CtrAsync("task", "ls")).Stdout.Split('\n').Any(l => l.StartsWith(id, StringComparison.Ordinal) && l.Contains("RUNNING")))
        {
            Assert.False(run.IsCompleted, $"{id} ended before it was seen running: {(run.IsCompleted ? run.Result : null)}");
            Assert.True(DateTime.UtcNow < until, $"{id} was not running within 60 s");
            await Task.Delay(50);
        }
    }

    private static string[] Bind(string source, string permission) =>
        ["--mount", $"type=bind,src={source},dst=/data,options=rbind:{permission}"];

    private static List<string> DescriptorTargets(int pid)
    {
        var targets = new List<string>();
        foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target)
                {
                    targets.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed meanwhile.
            }
        }
        return targets;
    }

    private async Task ImportAsync()
    {
        await ImportGate.WaitAsync();
        try
        {
            if (_importedInto == fx.Containerd.Address)
            {
                return;
            }
            var wasm = await TestImages.EnsureDemoWasmAsync();
            await fx.Containerd.ImportAsync(TestImages.Build("shared-spec-tests", new ImageDefinition
            {
                Name = Image,
                Platform = Platform.LinuxAmd64,
                Config = new ImageConfig { Entrypoint = ["/wasi-demo-app.wasm"] },
                Layers =
                [
                    new FilesystemLayer(
                    [
                        LayerEntry.File("wasi-demo-app.wasm", wasm, Modes.Executable),
                        LayerEntry.Bytes("write-root.wat", Encoding.UTF8.GetBytes(SpecTestModules.Writer(RootFd, "written"))),
                        LayerEntry.Bytes("write-bind.wat", Encoding.UTF8.GetBytes(SpecTestModules.Writer(FirstBindFd, "out"))),
                        LayerEntry.Bytes("read-bind.wat", Encoding.UTF8.GetBytes(SpecTestModules.Reader(FirstBindFd, "marker", sleepSeconds: 0))),
                        LayerEntry.Bytes("sleep-read-bind.wat", Encoding.UTF8.GetBytes(SpecTestModules.Reader(FirstBindFd, "marker", sleepSeconds: 3))),
                    ]),
                ],
            }).TarPath);
            _importedInto = fx.Containerd.Address;
        }
        finally
        {
            ImportGate.Release();
        }
    }
}
