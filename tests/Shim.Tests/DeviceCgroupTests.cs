using System.Text;
using System.Text.Json.Nodes;
using Containerd.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// <c>linux.resources.devices</c> as an attack: an image carries a block device node of a disk, and the container,
/// root by default, opens it. The disk is a loop device over a small file with a marker in it, so a read that gets
/// through is seen (and cannot stream a real disk). Under rules that deny all but the usual character devices, the
/// wasm guest is refused as runc refuses a Linux container with the same spec and node; an allowed device still
/// reads, and a spec that allows the disk lets the same guest read the marker, so the refusal is the device rules'.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class DeviceCgroupTests(WasmShimFixture fx, ITestOutputHelper output)
{
    private const string Marker = "runwasi-dotnet loop disk marker";

    [Fact]
    public async Task Wasm_guest_is_refused_a_disk_node_in_its_image_as_runc_is_and_still_reads_allowed_devices()
    {
        await using var disk = await LoopDisk.CreateAsync(Marker);
        output.WriteLine($"disk: {disk.Device} ({disk.Major}:{disk.Minor})");

        await using (var wasm = await ConfigContainer.CreateAsync(fx, "dev-deny"))
        {
            disk.MakeNode(wasm.Rootfs, "disk");
            MakeCharNode(wasm.Rootfs, "null", 1, 3);
            DenyAllButDefaults(wasm.Spec);
            var refused = await wasm.Args("cat", "/disk").RunAsync();
            output.WriteLine($"wasm, cat /disk: {refused}");
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("cat: cannot open /disk: Operation not permitted", refused.Stderr);
            Assert.DoesNotContain(Marker, refused.Stdout);
        }

        await using (var wasm = await ConfigContainer.CreateAsync(fx, "dev-null"))
        {
            MakeCharNode(wasm.Rootfs, "null", 1, 3);
            DenyAllButDefaults(wasm.Spec);
            var allowed = await wasm.Args("cat", "/null").RunAsync();
            output.WriteLine($"wasm, cat /null: {allowed}");
            Assert.Equal(0, allowed.ExitCode);
            Assert.Equal("", allowed.Stdout);
        }

        await using (var linux = ConfigContainer.CreateRunc(fx, "dev-runc"))
        {
            disk.MakeNode(linux.Rootfs, "disk");
            DenyAllButDefaults(linux.Spec);
            var refused = await linux.Command("/bin/busybox", "cat", "/disk").RunAsync();
            output.WriteLine($"runc, cat /disk: {refused}");
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("Operation not permitted", refused.Stderr);
            Assert.DoesNotContain(Marker, refused.Stdout);
        }

        await using (var wasm = await ConfigContainer.CreateAsync(fx, "dev-allow"))
        {
            disk.MakeNode(wasm.Rootfs, "disk");
            DenyAllButDefaults(wasm.Spec);
            Rules(wasm.Spec).Add(Rule(true, "b", disk.Major, disk.Minor, "r"));
            var read = await wasm.Args("cat", "/disk").RunAsync();
            output.WriteLine($"wasm, cat /disk with b {disk.Major}:{disk.Minor} r allowed: exit {read.ExitCode}, {read.Stdout.Length} characters");
            Assert.Equal(0, read.ExitCode);
            Assert.StartsWith(Marker, read.Stdout);
        }
    }

    [Fact]
    public async Task Wasm_task_cgroup_has_the_specs_device_whitelist()
    {
        if (Containerd.Shimkit.Cgroups.CgroupHierarchy.Host is not { Version: Containerd.Shimkit.Cgroups.CgroupVersion.V1 } host
            || !host.Controllers.TryGetValue("devices", out var devicesRoot))
        {
            output.WriteLine("SKIPPED: this host has no cgroup v1 devices hierarchy (KitDeviceCgroupTests covers v2)");
            return;
        }
        await using var c = (await ConfigContainer.CreateAsync(fx, "dev-list")).Args("sleep", "60");
        DenyAllButDefaults(c.Spec);
        var pid = await c.StartDetachedAsync();
        var line = File.ReadAllLines($"/proc/{pid}/cgroup").Single(l => l.Split(':')[1].Split(',').Contains("devices"));
        var path = line.Split(':', 3)[2];
        output.WriteLine($"task {pid}: devices cgroup {path}");
        Assert.EndsWith("/" + c.Id, path);
        var list = File.ReadAllLines(Path.Combine(Path.Join(devicesRoot, path), "devices.list"));
        // The shim writes the allowances in major, minor order, and the kernel lists them as they came; runc's
        // always-allowed mknod of any node comes with them, as under runc.
        Assert.Equal(["b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
            "c 136:* rwm"], list);
    }

    /// <summary>containerd's defaults: deny everything, then the character devices every container gets.</summary>
    private static void DenyAllButDefaults(JsonObject spec)
    {
        var linux = spec["linux"]!.AsObject();
        linux["resources"] = new JsonObject
        {
            ["devices"] = new JsonArray(
                Rule(false, null, null, null, "rwm"),
                Rule(true, "c", 1, 3, "rwm"), Rule(true, "c", 1, 5, "rwm"), Rule(true, "c", 1, 7, "rwm"),
                Rule(true, "c", 1, 8, "rwm"), Rule(true, "c", 1, 9, "rwm"), Rule(true, "c", 5, 0, "rwm"),
                Rule(true, "c", 5, 1, "rwm"), Rule(true, "c", 5, 2, "rwm"), Rule(true, "c", 136, null, "rwm")),
        };
    }

    private static JsonArray Rules(JsonObject spec) => spec["linux"]!["resources"]!["devices"]!.AsArray();

    private static JsonObject Rule(bool allow, string? type, long? major, long? minor, string access)
    {
        var rule = new JsonObject { ["allow"] = allow, ["access"] = access };
        if (type is not null)
        {
            rule["type"] = type;
        }
        if (major is not null)
        {
            rule["major"] = major;
        }
        if (minor is not null)
        {
            rule["minor"] = minor;
        }
        return rule;
    }

    private static void MakeCharNode(string rootfs, string name, int major, int minor) =>
        Mknod(Path.Combine(rootfs, name), 'c', major, minor);

    private static void Mknod(string path, char type, int major, int minor)
    {
        var result = ProcessRunner.RunAsync("mknod", ["-m", "0600", path, type.ToString(), major.ToString(), minor.ToString()])
            .GetAwaiter().GetResult();
        Assert.True(result.Succeeded, $"mknod {path}: {result}");
    }

    /// <summary>A read-only loop device over a 64 KiB file that starts with a marker: a disk whose contents are known,
    /// detached and removed again at the end.</summary>
    private sealed class LoopDisk : IAsyncDisposable
    {
        private readonly string _backing;

        private LoopDisk(string backing, string device, int major, int minor)
        {
            _backing = backing;
            Device = device;
            Major = major;
            Minor = minor;
        }

        public string Device { get; }

        public int Major { get; }

        public int Minor { get; }

        public static async Task<LoopDisk> CreateAsync(string marker)
        {
            var backing = Path.Combine(Path.GetTempPath(), $"loop-disk-{Guid.NewGuid():N}.img");
            var content = new byte[64 * 1024];
            Encoding.ASCII.GetBytes(marker + "\n").CopyTo(content, 0);
            await File.WriteAllBytesAsync(backing, content);
            var attach = await ProcessRunner.RunAsync("losetup", ["--find", "--show", "--read-only", backing]);
            if (!attach.Succeeded)
            {
                File.Delete(backing);
                throw new InvalidOperationException($"losetup {backing}: {attach}");
            }
            var device = attach.Stdout.Trim();
            try
            {
                // /sys/class/block/loopN/dev holds "major:minor".
                var numbers = (await File.ReadAllTextAsync($"/sys/class/block/{Path.GetFileName(device)}/dev")).Trim().Split(':');
                return new LoopDisk(backing, device, int.Parse(numbers[0]), int.Parse(numbers[1]));
            }
            catch
            {
                await ProcessRunner.RunAsync("losetup", ["--detach", device]);
                File.Delete(backing);
                throw;
            }
        }

        /// <summary>A block device node of this disk at <paramref name="rootfs"/>/<paramref name="name"/>.</summary>
        public void MakeNode(string rootfs, string name) => Mknod(Path.Combine(rootfs, name), 'b', Major, Minor);

        public async ValueTask DisposeAsync()
        {
            var detach = await ProcessRunner.RunAsync("losetup", ["--detach", Device]);
            File.Delete(_backing);
            Assert.True(detach.Succeeded, $"losetup --detach {Device}: {detach}");
        }
    }
}
