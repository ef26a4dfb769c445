using System.Text.Json.Nodes;
using Containerd.Api.Client;
using Containerd.Services.Tasks.V1;
using Containerd.Shim.Wasm;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// Hostile specs and rootfs contents run through containerd, as a tenant would write them: each attack is refused or
/// confined to the container, the host is checked untouched afterwards, and where runc can run the same spec the
/// container sees what runc's would (busybox under <c>io.containerd.runc.v2</c>).
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class AttackTests(WasmShimFixture fx, ITestOutputHelper output) : IDisposable
{
    private readonly string _host = HostFolder("attack-host-");

    public void Dispose() => Directory.Delete(_host, recursive: true);

    [Fact]
    public async Task A_bind_through_a_symlink_an_earlier_volume_planted_lands_in_the_rootfs_as_with_runc()
    {
        // The first volume holds a symlink to a host folder; the second bind's destination passes through it.
        var target = Path.Combine(_host, "target");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "untouched"), "host");
        var volume = Path.Combine(_host, "volume");
        Directory.CreateDirectory(volume);
        File.CreateSymbolicLink(Path.Combine(volume, "link"), target);
        var payload = Path.Combine(_host, "payload");
        Directory.CreateDirectory(payload);
        File.WriteAllText(Path.Combine(payload, "p.txt"), "payload\n");
        void Mount(ConfigContainer c)
        {
            c.Mounts.Add(Bind(volume, "/vol", "rw"));
            c.Mounts.Add(Bind(payload, "/vol/link/x", "ro"));
        }

        // Resolved inside the rootfs, the link names <rootfs><target>: that is where the payload is mounted.
        await using var wasm = (await ConfigContainer.CreateAsync(fx, "bindlink")).Args("cat", $"{target}/x/p.txt");
        Mount(wasm);
        var result = await wasm.RunAsync();
        output.WriteLine(result.ToString());
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("payload\n", result.Stdout);

        await using var runc = ConfigContainer.CreateRunc(fx, "bindlink-runc")
            .Command("/bin/busybox", "cat", $"{target}/x/p.txt");
        Mount(runc);
        var peer = await runc.RunAsync();
        Assert.True(peer.Succeeded, peer.ToString());
        Assert.Equal(peer.Stdout, result.Stdout);

        Assert.Equal(["untouched"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
        Assert.True(Directory.Exists(Path.Combine(wasm.Rootfs, target.TrimStart('/'), "x")));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(_host, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_read_only_rbind_is_read_only_in_its_submounts_too()
    {
        var sub = Path.Combine(_host, "sub");
        Directory.CreateDirectory(sub);
        Assert.Equal(0, (await ProcessRunner.RunAsync("mount", ["-t", "tmpfs", "-o", "size=1m", "attack-sub", sub], null, TimeSpan.FromSeconds(10))).ExitCode);
        try
        {
            await using var c = (await ConfigContainer.CreateAsync(fx, "rosub")).Args("write", "/data/sub/new", "x");
            c.Mounts.Add(Bind(_host, "/data", "ro"));
            var result = await c.RunAsync();
            output.WriteLine(result.ToString());
            Assert.Equal(1, result.ExitCode);
            Assert.Contains("write: cannot open /data/sub/new", result.Stderr);
            Assert.False(File.Exists(Path.Combine(sub, "new")));
            // The same folder bound read-write takes the write: the refusal above was the mount's.
            await using var rw = (await ConfigContainer.CreateAsync(fx, "rwsub")).Args("write", "/data/sub/new", "x");
            rw.Mounts.Add(Bind(_host, "/data", "rw"));
            Assert.True((await rw.RunAsync()).Succeeded);
            Assert.True(File.Exists(Path.Combine(sub, "new")));
        }
        finally
        {
            await ProcessRunner.RunAsync("umount", [sub], null, TimeSpan.FromSeconds(10));
        }
    }

    [Theory]
    [InlineData("/app.wat", "absolute")]   // the entrypoint itself is a symlink to the host file
    [InlineData("tool.wat", "path")]       // found through PATH=/bin, and /bin is a symlink to the host folder
    public async Task An_entrypoint_leading_to_a_host_file_is_refused_without_its_contents(string entrypoint, string how)
    {
        var secret = Path.Combine(_host, "tool.wat");
        File.WriteAllText(secret, "(module $SECRET-first-line-of-a-host-file)\n");
        await using var c = await ConfigContainer.CreateAsync(fx, "entry-" + how);
        File.Delete(Path.Combine(c.Rootfs, "app.wasm"));
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "app.wat"), secret);
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "bin"), _host);
        c.Command(entrypoint);
        c.Process["env"] = new JsonArray("PATH=/bin");
        var result = await c.RunAsync();
        output.WriteLine(result.ToString());
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains(entrypoint, result.Stderr);
        Assert.DoesNotContain("SECRET", result.ToString());
    }

    [Theory]
    [InlineData("mkfifo", new[] { "-m", "0644" }, "fifo")]
    [InlineData("mknod", new[] { "-m", "0644" }, "zero")] // the node of /dev/zero, "c 1 5", appended below
    public async Task A_module_that_is_a_fifo_or_a_device_fails_create_at_once(string tool, string[] options, string what)
    {
        await using var c = await ConfigContainer.CreateAsync(fx, what);
        var module = Path.Combine(c.Rootfs, "app.wasm");
        File.Delete(module);
        string[] node = tool == "mknod" ? [module, "c", "1", "5"] : [module];
        Assert.Equal(0, (await ProcessRunner.RunAsync(tool, [.. options, .. node], null, TimeSpan.FromSeconds(10))).ExitCode);
        var result = await c.RunAsync();
        output.WriteLine(result.ToString());
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("/app.wasm", result.Stderr);
        Assert.Contains("not a regular file", result.Stderr);
    }

    [Fact]
    public async Task A_working_directory_that_is_a_symlink_loop_fails_create_naming_it()
    {
        await using var c = await ConfigContainer.CreateAsync(fx, "cwd-loop");
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "a"), "b");
        File.CreateSymbolicLink(Path.Combine(c.Rootfs, "b"), "a");
        c.Process["cwd"] = "/a";
        var result = await c.Args("ls", ".").RunAsync();
        output.WriteLine(result.ToString());
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("/a", result.Stderr);
        Assert.Contains("cwd", result.Stderr);
    }

    [Fact]
    public async Task A_preopen_annotation_naming_host_folders_preopens_the_containers_own_or_is_refused()
    {
        // The rootfs has an /etc of its own: the annotation means that one, never the host's.
        await using (var own = await ConfigContainer.CreateAsync(fx, "preopen-etc"))
        {
            Directory.CreateDirectory(Path.Combine(own.Rootfs, "etc"));
            File.WriteAllText(Path.Combine(own.Rootfs, "etc", "container-marker"), "");
            own.Spec["annotations"] = new JsonObject { [WasiPreopens.Annotation] = "/etc:ro" };
            var listed = await own.Args("ls", "/etc").RunAsync();
            output.WriteLine(listed.ToString());
            Assert.True(listed.Succeeded, listed.ToString());
            Assert.Contains("container-marker", listed.Stdout);
            Assert.DoesNotContain("passwd", listed.Stdout);
        }
        // Climbing above the root, or a folder the rootfs does not have, fails Create and names the preopen.
        foreach (var (annotation, named) in new[] { ("/../../../etc:ro", "/../../../etc"), (_host + ":ro", _host) })
        {
            await using var hostile = await ConfigContainer.CreateAsync(fx, "preopen-host");
            hostile.Spec["annotations"] = new JsonObject { [WasiPreopens.Annotation] = annotation };
            var refused = await hostile.Args("ls", "/").RunAsync();
            output.WriteLine(refused.ToString());
            Assert.False(refused.Succeeded, refused.ToString());
            Assert.Contains(named, refused.Stderr);
        }
    }

    [Fact]
    public async Task A_preopen_swapped_for_a_symlink_between_create_and_start_stays_in_the_rootfs()
    {
        File.WriteAllText(Path.Combine(_host, "host-marker"), "");
        await using var c = (await ConfigContainer.CreateAsync(fx, "swap")).Args("ls", "/data");
        var data = Path.Combine(c.Rootfs, "data");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "mine"), "");
        c.Spec["annotations"] = new JsonObject { [WasiPreopens.Annotation] = "/:ro,/data:ro" };
        await c.CreateContainerAsync();

        using var client = new ContainerdClient(fx.Containerd.Address, fx.Containerd.Namespace);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = Path.Combine(_host, "stdout");
        File.WriteAllText(stdout, "");
        await client.Tasks.CreateAsync(new CreateTaskRequest { ContainerId = c.Id, Stdout = stdout }, cancellationToken: cts.Token);
        // A sidecar sharing the rootfs swaps the preopened folder for a link to a host folder. The same path exists
        // inside the rootfs too: what the guest lists says which of the two the link was resolved in.
        Directory.Delete(data, recursive: true);
        File.CreateSymbolicLink(data, _host);
        var lookalike = Path.Combine(c.Rootfs, _host.TrimStart('/'));
        Directory.CreateDirectory(lookalike);
        File.WriteAllText(Path.Combine(lookalike, "inside-marker"), "");
        var waiting = client.Tasks.WaitAsync(new WaitRequest { ContainerId = c.Id }, cancellationToken: cts.Token);
        await client.Tasks.StartAsync(new StartRequest { ContainerId = c.Id }, cancellationToken: cts.Token);
        await waiting;

        var listed = File.ReadAllText(stdout);
        output.WriteLine(listed);
        Assert.Equal("inside-marker\n", listed);
    }

    [Fact]
    public async Task Masked_and_read_only_paths_hide_and_protect_as_with_runc()
    {
        static void Plant(string rootfs)
        {
            Directory.CreateDirectory(Path.Combine(rootfs, "secret"));
            File.WriteAllText(Path.Combine(rootfs, "secret", "inner"), "hidden dir\n");
            File.WriteAllText(Path.Combine(rootfs, "secret.txt"), "hidden file\n");
            Directory.CreateDirectory(Path.Combine(rootfs, "ro"));
        }
        void Confine(ConfigContainer c)
        {
            Plant(c.Rootfs);
            c.Spec["linux"]!["maskedPaths"] = new JsonArray("/secret", "/secret.txt", "/not-there");
            c.Spec["linux"]!["readonlyPaths"] = new JsonArray("/ro", "/not-there-either");
        }

        await using var wasm = await ConfigContainer.CreateAsync(fx, "masked");
        Confine(wasm);
        var dir = await wasm.Args("cat", "/secret/inner").RunAsync();
        var file = await wasm.Args("cat", "/secret.txt").RunAsync();
        var write = await wasm.Args("write", "/ro/new", "x").RunAsync();
        output.WriteLine($"{dir}\n{file}\n{write}");
        Assert.Equal(1, dir.ExitCode);
        Assert.True(file.Succeeded, file.ToString());
        Assert.Equal("", file.Stdout);
        Assert.Equal(1, write.ExitCode);
        Assert.False(File.Exists(Path.Combine(wasm.Rootfs, "ro", "new")));

        await using var runc = ConfigContainer.CreateRunc(fx, "masked-runc");
        Confine(runc);
        var peer = await runc.Command("/bin/busybox", "sh", "-c",
            "/bin/busybox cat /secret/inner; echo dir=$?; /bin/busybox cat /secret.txt; echo file=$?; echo x > /ro/new; echo write=$?").RunAsync();
        output.WriteLine(peer.ToString());
        Assert.Contains("dir=1", peer.Stdout);
        Assert.Contains("file=0", peer.Stdout);
        Assert.DoesNotContain("hidden", peer.Stdout);
        Assert.Contains("write=1", peer.Stdout);
        Assert.Equal("hidden dir\n", File.ReadAllText(Path.Combine(wasm.Rootfs, "secret", "inner")));
    }

    [Fact]
    public async Task The_running_instance_has_the_rootfs_as_its_root_and_cwd()
    {
        await using var c = (await ConfigContainer.CreateAsync(fx, "root")).Args("sleep", "60");
        var pid = await c.StartDetachedAsync();
        Assert.True(File.Exists($"/proc/{pid}/root/app.wasm"));
        Assert.False(Directory.Exists($"/proc/{pid}/root/usr"), "the host's /usr is visible to the instance");
        Assert.False(Directory.Exists($"/proc/{pid}/root/proc"), "the host's /proc is visible to the instance");
        Assert.True(File.Exists($"/proc/{pid}/cwd/app.wasm"));
        // Every folder it holds open is one of the container's.
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            var link = new FileInfo(fd).LinkTarget ?? "";
            Assert.False(link.StartsWith("/usr", StringComparison.Ordinal) || link.StartsWith(fx.ShimBinDir, StringComparison.Ordinal),
                $"{fd} -> {link}");
        }
    }

    [Theory]
    [InlineData(0, """{"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE"], "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": [], "ambient": []}""")]
    [InlineData(1000, """{"bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"], "effective": ["CAP_NET_BIND_SERVICE"], "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": []}""")]
    [InlineData(1000, """{"bounding": ["CAP_NET_BIND_SERVICE"], "effective": ["CAP_NET_BIND_SERVICE"], "permitted": ["CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": ["CAP_NET_BIND_SERVICE"]}""")]
    // A non-root user whose spec asks for the powerful capabilities in every set but the ambient one keeps none.
    [InlineData(1000, """{"bounding": ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SETUID"], "effective": ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SETUID"], "permitted": ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SETUID"], "inheritable": ["CAP_SYS_ADMIN"], "ambient": []}""")]
    public async Task Capability_sets_are_the_ones_runc_leaves(int uid, string capabilities)
    {
        async Task<Dictionary<string, string>> SetsOf(ConfigContainer c)
        {
            c.Process["user"] = new JsonObject { ["uid"] = uid, ["gid"] = uid };
            c.Process["capabilities"] = JsonNode.Parse(capabilities);
            var pid = await c.StartDetachedAsync();
            var sets = File.ReadAllLines($"/proc/{pid}/status").Select(l => l.Split(':', 2))
                .Where(f => f[0].StartsWith("Cap", StringComparison.Ordinal) || f[0] == "NoNewPrivs")
                .ToDictionary(f => f[0], f => f[1].Trim());
            await c.DeleteAsync();
            return sets;
        }

        await using var wasm = (await ConfigContainer.CreateAsync(fx, "caps")).Args("sleep", "60");
        await using var runc = ConfigContainer.CreateRunc(fx, "caps-runc").Command("/bin/busybox", "sleep", "60");
        var mine = await SetsOf(wasm);
        var theirs = await SetsOf(runc);
        output.WriteLine(string.Join(", ", mine.Select(p => $"{p.Key}={p.Value}")));
        Assert.Equal(theirs.OrderBy(p => p.Key), mine.OrderBy(p => p.Key));
    }

    [Fact]
    public async Task A_linux_container_the_shim_hands_to_runc_is_confined_as_under_runc_itself()
    {
        // What the kernel says of the task: its capability sets, no_new_privs and seccomp state, which namespaces
        // differ from the host's, and what its root holds.
        async Task<string[]> Observe(ConfigContainer c)
        {
            c.Namespace("pid").Namespace("ipc").Namespace("uts").Namespace("network");
            c.Process["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1000 };
            c.Process["noNewPrivileges"] = true;
            c.Process["capabilities"] = JsonNode.Parse("""{"bounding": ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"], "inheritable": [], "ambient": ["CAP_NET_BIND_SERVICE"]}""");
            var linux = c.Spec["linux"]!.AsObject();
            linux["seccomp"] = JsonNode.Parse("""{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["mknodat", "mknod"], "action": "SCMP_ACT_ERRNO"}]}""");
            linux["maskedPaths"] = new JsonArray("/proc/kcore");
            linux["readonlyPaths"] = new JsonArray("/proc/sys");
            var pid = await c.StartDetachedAsync();
            var status = File.ReadAllLines($"/proc/{pid}/status")
                .Where(l => l.StartsWith("Cap", StringComparison.Ordinal) || l.StartsWith("NoNewPrivs", StringComparison.Ordinal)
                    || l.StartsWith("Seccomp", StringComparison.Ordinal) || l.StartsWith("Uid", StringComparison.Ordinal));
            var namespaces = new[] { "mnt", "pid", "ipc", "uts", "net", "cgroup", "user" }
                .Where(n => new FileInfo($"/proc/{pid}/ns/{n}").LinkTarget != new FileInfo($"/proc/self/ns/{n}").LinkTarget)
                .Select(n => "new " + n);
            var root = Directory.EnumerateFileSystemEntries($"/proc/{pid}/root").Select(e => "/" + Path.GetFileName(e)).Order();
            string[] seen = [.. status, .. namespaces, .. root];
            await c.DeleteAsync();
            return seen;
        }

        await using var dispatched = ConfigContainer.CreateRunc(fx, "dispatch", WasmShimFixture.Runtime).Command("/bin/busybox", "sleep", "60");
        await using var runc = ConfigContainer.CreateRunc(fx, "dispatch-runc").Command("/bin/busybox", "sleep", "60");
        var mine = await Observe(dispatched);
        var theirs = await Observe(runc);
        output.WriteLine(string.Join("\n", mine));
        Assert.Contains("new mnt", mine);
        Assert.Contains(mine, l => l.StartsWith("Seccomp:", StringComparison.Ordinal) && l.EndsWith("2", StringComparison.Ordinal));
        Assert.Equal(theirs, mine);
    }

    private static JsonObject Bind(string source, string destination, string mode) => new()
    {
        ["destination"] = destination,
        ["type"] = "bind",
        ["source"] = source,
        ["options"] = new JsonArray("rbind", mode),
    };

    // A folder the container's user can pass through (CreateTempSubdirectory makes 0700 folders).
    private static string HostFolder(string prefix)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        }
        return dir;
    }
}
