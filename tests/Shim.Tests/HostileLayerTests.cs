using System.Formats.Tar;
using System.Text;
using System.Text.RegularExpressions;
using Containerd.Testing;
using ImageBuilder;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// Image layers that try to reach the host, imported with <c>ctr images import</c> and run with the demo module under
/// the wasm shim (issue 16). Each test has its own host folder holding one file, <c>secret</c>, with a unique marker;
/// the layer's tar is written here with <see cref="TarWriter"/> and carried unchanged (<see cref="TarLayer"/>) on top of
/// a layer holding <c>/app.wasm</c>. Whatever happens, the host folder still holds only <c>secret</c>, with its
/// contents, inode and link count, and nothing named after the test lies in containerd's folder outside a snapshot's
/// <c>fs</c>.
///
/// What containerd 1.6 (overlayfs snapshotter; a layer with a parent is applied straight into the new snapshot's
/// <c>fs</c>) does with each entry, as observed:
/// <list type="bullet">
/// <item>a name climbing with <c>..</c> (<c>../x</c>, or 32 of them and then a host path): clamped at the rootfs,
/// the file is written at <c>fs/x</c> or <c>fs/&lt;host path&gt;</c>;</item>
/// <item>an absolute name: taken relative to the rootfs;</item>
/// <item>a file under a symlink to a host folder (absolute, or relative with <c>..</c> enough to reach <c>/</c>): the
/// link is resolved inside the rootfs, the file lands at <c>fs/&lt;host folder&gt;/…</c>;</item>
/// <item>a file over a symlink to a host file: the link is removed and the file written in its place;</item>
/// <item>a hard link whose target is absolute or climbs with <c>..</c>: the target is clamped at the rootfs, so it
/// names a file that is not there and the unpack fails, at import and again at <c>ctr run</c>: <c>failed to extract
/// layer …: mount callback failed on &lt;root&gt;/tmpmounts/containerd-mountN: link &lt;that mount&gt;&lt;host file&gt;
/// &lt;that mount&gt;/&lt;name&gt;: no such file or directory</c> for a first layer (applied through a temporary bind
/// mount), <c>link &lt;snapshot&gt;/fs&lt;host file&gt; …</c> for a later one (applied into the snapshot's upper
/// folder); when the layer carries a file at that path first, the link is made to it;</item>
/// <item>a hard link to a symlink that points at a host file: links the symlink itself (link(2) does not follow it);</item>
/// <item>a whiteout (<c>.wh.secret</c>) or opaque marker (<c>.wh..wh..opq</c>) in a climbing folder: clamped, turned
/// into overlay's 0/0 character device and opaque xattr inside the snapshot, deleting nothing on the host. (That folder
/// exists in one layer only, so overlayfs lists the device in it: runc's <c>ls</c> shows <c>secret</c> and fails to
/// stat it, and the wasm guest's <c>ls</c> of the folder fails with ENOENT; its files still open.)</item>
/// </list>
/// The guest then sees only what the layer put in the rootfs. Where a symlink leads out of the preopened rootfs
/// (absolute, or <c>..</c> above <c>/</c>), WASI path resolution refuses it (EPERM) where runc's <c>cat</c> follows it
/// inside the container's root; neither ever shows the host file (the last test runs both on one image).
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class HostileLayerTests(WasmShimFixture fx, ITestOutputHelper output) : IAsyncLifetime
{
    private const string RuncRuntime = "io.containerd.runc.v2";

    // Deeper than any folder the layer can be unpacked in: a climb that were not clamped would reach the host's '/'.
    private const int Depth = 32;

    private readonly string _id = Guid.NewGuid().ToString("N")[..8];
    private readonly List<string> _images = [];
    private string _host = "";
    private string _secret = "";
    private string _marker = "";
    private string _work = "";
    private string _secretStat = "";

    public async Task InitializeAsync()
    {
        // Beside containerd's own folder, on the same filesystem: a hard link out would not fail with EXDEV.
        _host = Path.Combine(Path.GetDirectoryName(fx.Containerd.WorkDir)!, "hostile-layer-host-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_host);
        _work = Directory.CreateTempSubdirectory("hostile-layer-images-").FullName;
        _secret = Path.Combine(_host, "secret");
        _marker = $"host-marker-{_id}\n";
        File.WriteAllText(_secret, _marker);
        _secretStat = await StatAsync(_secret, "%h %i");
        Assert.StartsWith("1 ", _secretStat);
        Assert.Equal(await StatAsync(fx.Containerd.RootDir, "%d"), await StatAsync(_host, "%d"));
    }

    public async Task DisposeAsync()
    {
        foreach (var image in _images)
        {
            // --sync: the garbage collection is over before the next test imports.
            await fx.Containerd.CtrAsync("images", "rm", "--sync", image);
        }
        foreach (var folder in new[] { _host, _work }.Where(Directory.Exists))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Names_climbing_with_dotdot_are_clamped_into_the_rootfs()
    {
        var image = await ImportAsync("dotdot",
        [
            Regular($"{Climb(_host)}/planted-{_id}", "through dotdot\n"),
            Regular($"../beside-{_id}", "beside\n"),
            Regular($"../../../../beside4-{_id}", "beside\n"),
        ]);

        var result = await CatAsync(image, $"{_host}/planted-{_id}");
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("through dotdot\n", result.Stdout);
        var inSnapshots = await AssertHostUntouchedAsync();
        Assert.Equal([$"beside-{_id}", $"beside4-{_id}", $"{_host.TrimStart('/')}/planted-{_id}"], inSnapshots.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Absolute_names_are_taken_relative_to_the_rootfs()
    {
        var image = await ImportAsync("absolute", [Regular($"{_host}/planted-{_id}", "absolute\n")]);

        var result = await CatAsync(image, $"{_host}/planted-{_id}");
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("absolute\n", result.Stdout);
        Assert.Equal([$"{_host.TrimStart('/')}/planted-{_id}"], await AssertHostUntouchedAsync());
    }

    [Theory]
    [InlineData("absolute")]
    [InlineData("relative")]
    public async Task Files_written_through_a_symlink_to_a_host_folder_land_in_the_rootfs(string how)
    {
        var target = how == "absolute" ? _host : Climb(_host);
        var image = await ImportAsync("symdir-" + how,
            [Symlink("out", target), Regular($"out/planted-{_id}", "through a link\n")]);

        // The file is where the link, resolved in the rootfs, leads; the guest cannot follow the link itself, which
        // leads out of its preopen.
        var direct = await CatAsync(image, $"{_host}/planted-{_id}");
        Assert.True(direct.Succeeded, direct.ToString());
        Assert.Equal("through a link\n", direct.Stdout);
        var viaLink = await CatAsync(image, $"/out/planted-{_id}");
        Assert.Equal(1, viaLink.ExitCode);
        Assert.Contains($"cat: cannot open /out/planted-{_id}: Operation not permitted", viaLink.Stderr);
        Assert.Equal([$"{_host.TrimStart('/')}/planted-{_id}"], await AssertHostUntouchedAsync());
    }

    [Fact]
    public async Task A_file_over_a_symlink_to_a_host_file_replaces_the_link_not_the_host_file()
    {
        var image = await ImportAsync("symfile-over", [Symlink($"over-{_id}", _secret), Regular($"over-{_id}", "replaced\n")]);

        var result = await CatAsync(image, $"/over-{_id}");
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("replaced\n", result.Stdout);
        var inSnapshot = Assert.Single(await AssertHostUntouchedAsync());
        Assert.Equal($"over-{_id}", inSnapshot);
    }

    [Theory]
    [InlineData("absolute")]
    [InlineData("relative")]
    public async Task A_symlink_to_a_host_file_shows_the_guest_nothing_of_it(string how)
    {
        var image = await ImportAsync("symfile-" + how, [Symlink($"peek-{_id}", how == "absolute" ? _secret : Climb(_secret))]);

        var result = await CatAsync(image, $"/peek-{_id}");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"cat: cannot open /peek-{_id}: Operation not permitted", result.Stderr);
        Assert.DoesNotContain(_marker.Trim(), result.ToString());
        await AssertHostUntouchedAsync();
    }

    [Theory]
    [InlineData("absolute")]
    [InlineData("dotdot")]
    public async Task A_hard_link_to_a_host_file_is_refused_at_unpack_and_at_run(string how)
    {
        var refusal = await ImportRefusedAsync("hardlink-" + how, [HardLink($"hl-{_id}", how == "absolute" ? _secret : Climb(_secret))]);

        // The target was clamped into the folder the layer is unpacked in (a temporary mount of the new snapshot, as it
        // has no parent), where there is no such file.
        var root = $@"{Regex.Escape(fx.Containerd.RootDir)}/tmpmounts/containerd-mount\d+";
        var clamped = new Regex($@"failed to extract layer sha256:[0-9a-f]{{64}}: mount callback failed on ({root}): link \1{Regex.Escape(_secret)} \1/hl-{_id}: no such file or directory");
        Assert.Matches(clamped, refusal);
        var run = await CatAsync(ImageName("hardlink-" + how), $"/hl-{_id}");
        Assert.False(run.Succeeded, run.ToString());
        Assert.Matches(clamped, run.Stderr);
        Assert.Empty(await AssertHostUntouchedAsync());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(fx.Containerd.RootDir, "tmpmounts")));
    }

    [Fact]
    public async Task A_hard_link_to_an_absolute_name_links_the_file_the_layer_put_there()
    {
        var image = await ImportAsync("hardlink-lookalike",
            [Regular($"{_host.TrimStart('/')}/secret", "lookalike\n"), HardLink($"hl-{_id}", _secret)]);

        var result = await CatAsync(image, $"/hl-{_id}");
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("lookalike\n", result.Stdout);
        Assert.Equal([$"hl-{_id}"], await AssertHostUntouchedAsync());
        var (links, inode) = await StatLinksAsync(SnapshotHits().Single());
        Assert.Equal("2", links);
        Assert.NotEqual(_secretStat.Split(' ')[1], inode);
    }

    [Fact]
    public async Task A_hard_link_to_a_symlink_to_a_host_file_links_the_symlink()
    {
        var image = await ImportAsync("hardlink-symlink", [Symlink($"s-{_id}", _secret), HardLink($"hl-{_id}", $"s-{_id}")]);

        var result = await CatAsync(image, $"/hl-{_id}");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"cat: cannot open /hl-{_id}: Operation not permitted", result.Stderr);
        Assert.DoesNotContain(_marker.Trim(), result.ToString());
        await AssertHostUntouchedAsync();
        var hardLink = SnapshotHits().Single(p => p.EndsWith($"/fs/hl-{_id}", StringComparison.Ordinal));
        Assert.Equal(_secret, new FileInfo(hardLink).LinkTarget);
        Assert.Equal("2", (await StatLinksAsync(hardLink)).Links);
    }

    [Fact]
    public async Task Whiteouts_in_a_climbing_folder_delete_nothing_on_the_host()
    {
        var climb = Climb(_host);
        var image = await ImportAsync("whiteout",
            [Dir(climb), Regular($"{climb}/.wh..wh..opq", ""), Regular($"{climb}/.wh.secret", ""), Regular($"{climb}/kept-{_id}", "kept\n")]);

        // Clamped like any name: the whiteout hides the rootfs's own (absent) secret, beside the layer's file.
        var kept = await CatAsync(image, $"{_host}/kept-{_id}");
        Assert.True(kept.Succeeded, kept.ToString());
        Assert.Equal("kept\n", kept.Stdout);
        var hidden = await CatAsync(image, _secret);
        Assert.Equal(1, hidden.ExitCode);
        Assert.Contains($"cat: cannot open {_secret}: No such file or directory", hidden.Stderr);
        Assert.Equal([$"{_host.TrimStart('/')}/kept-{_id}"], await AssertHostUntouchedAsync());
    }

    [Fact]
    public async Task Clamped_entries_are_where_runc_finds_them_and_neither_sees_the_host_file()
    {
        var busybox = KnownImages.Busybox(TestImages.BusyboxBinaryPath).Layers.Single();
        var image = await ImportAsync("runc",
        [
            Regular($"{Climb(_host)}/dotdot-{_id}", "dotdot\n"),
            Regular($"{_host}/absolute-{_id}", "absolute\n"),
            Symlink("out", _host),
            Regular($"out/link-{_id}", "link\n"),
            Symlink($"peek-{_id}", _secret),
        ], busybox);

        foreach (var (path, content) in new[] { ($"{_host}/dotdot-{_id}", "dotdot\n"), ($"{_host}/absolute-{_id}", "absolute\n"), ($"{_host}/link-{_id}", "link\n") })
        {
            var wasm = await CatAsync(image, path);
            var runc = await CatAsync(image, path, RuncRuntime);
            Assert.True(wasm.Succeeded && runc.Succeeded, $"{wasm}\n{runc}");
            Assert.Equal(content, wasm.Stdout);
            Assert.Equal(content, runc.Stdout);
        }
        // runc follows the links inside the container's root; WASI refuses links that leave the preopen.
        var runcViaLink = await CatAsync(image, $"/out/link-{_id}", RuncRuntime);
        Assert.Equal("link\n", runcViaLink.Stdout);
        Assert.Contains("Operation not permitted", (await CatAsync(image, $"/out/link-{_id}")).Stderr);
        var runcPeek = await CatAsync(image, $"/peek-{_id}", RuncRuntime);
        var wasmPeek = await CatAsync(image, $"/peek-{_id}");
        Assert.Contains("No such file or directory", runcPeek.Stderr);
        Assert.Contains("Operation not permitted", wasmPeek.Stderr);
        Assert.DoesNotContain(_marker.Trim(), runcPeek.ToString() + wasmPeek);
        Assert.Equal([$"absolute-{_id}", $"dotdot-{_id}", $"link-{_id}", $"peek-{_id}"],
            (await AssertHostUntouchedAsync()).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    // Checks the host folder and containerd's folder; returns the paths, relative to their snapshot's fs, of what the
    // layers made under a name with this test's id.
    private async Task<IReadOnlyList<string>> AssertHostUntouchedAsync()
    {
        Assert.Equal(["secret"], Directory.EnumerateFileSystemEntries(_host).Select(Path.GetFileName));
        Assert.Equal(_marker, File.ReadAllText(_secret));
        Assert.Equal(_secretStat, await StatAsync(_secret, "%h %i"));
        foreach (var folder in new[] { "/", Path.GetDirectoryName(fx.Containerd.WorkDir)! })
        {
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder, $"*{_id}*"));
        }
        var inFs = new Regex(@"/io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/\d+/fs/(.+)$");
        var hits = Directory.EnumerateFileSystemEntries(fx.Containerd.WorkDir, $"*{_id}*", Recursive).ToList();
        output.WriteLine(string.Join('\n', hits));
        Assert.All(hits, h => Assert.Matches(inFs, h));
        return hits.Select(h => inFs.Match(h).Groups[1].Value).ToList();
    }

    private IEnumerable<string> SnapshotHits() => Directory.EnumerateFileSystemEntries(fx.Containerd.RootDir, $"*{_id}*", Recursive);

    private static EnumerationOptions Recursive => new() { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 };

    private string ImageName(string stem) => $"localhost/runwasi-dotnet/hostile-{stem}-{_id}:latest";

    // Builds the image (the demo module at /app.wasm, then `below`, then the hostile layer) and imports it, which
    // unpacks it. The bottom layer carries the test's id, so no snapshot is shared with an image another test removes:
    // containerd 1.6 can collect a shared parent between finding it and preparing the next layer on it.
    private async Task<string> ImportAsync(string stem, IEnumerable<TarEntry> hostile, Layer? below = null)
    {
        var refusal = await TryImportAsync(stem, hostile, below, oneLayer: false);
        Assert.True(refusal is null, refusal);
        return ImageName(stem);
    }

    // An image refused at unpack has the module in its only layer: a separate first layer would be unpacked and then,
    // referenced by no unpacked image, collected while the next `ctr run` prepares the hostile layer on it.
    private async Task<string> ImportRefusedAsync(string stem, IEnumerable<TarEntry> hostile)
    {
        var refusal = await TryImportAsync(stem, hostile, null, oneLayer: true);
        Assert.NotNull(refusal);
        return refusal;
    }

    private async Task<string?> TryImportAsync(string stem, IEnumerable<TarEntry> hostile, Layer? below, bool oneLayer)
    {
        var wasm = await TestImages.EnsureDemoWasmAsync();
        var app = new FilesystemLayer([LayerEntry.File("app.wasm", wasm, Modes.Executable), LayerEntry.Bytes("test-id", Encoding.UTF8.GetBytes(_id))]);
        var name = ImageName(stem);
        var path = Path.Combine(_work, stem + ".tar");
        ImageLayoutWriter.Write(new ImageDefinition
        {
            Name = name,
            Config = new ImageConfig { Entrypoint = ["/app.wasm"] },
            Layers = oneLayer
                ? [new TarLayer(Tar([Regular("app.wasm", File.ReadAllBytes(wasm), Modes.Executable), .. hostile]))]
                : [app, .. (below is null ? Array.Empty<Layer>() : [below]), new TarLayer(Tar(hostile))],
        }, path);
        // A failed unpack still leaves the image record: removed by DisposeAsync either way.
        _images.Add(name);
        try
        {
            await fx.Containerd.ImportAsync(path);
            return null;
        }
        catch (CtrCommandException e)
        {
            output.WriteLine(e.Result.ToString());
            return e.Result.Stderr;
        }
    }

    private Task<ProcessResult> CatAsync(string image, string path, string runtime = WasmShimFixture.Runtime) =>
        RunAsync(image, runtime, runtime == WasmShimFixture.Runtime ? ["/app.wasm", "cat", path] : ["/bin/busybox", "cat", path]);

    private async Task<ProcessResult> RunAsync(string image, string runtime, string[] args)
    {
        var id = WasmShimFixture.NewId("hostile");
        try
        {
            var result = await fx.Containerd.CtrAsync(["run", "--rm", "--runtime", runtime, image, id, .. args], TimeSpan.FromSeconds(90));
            output.WriteLine($"{runtime} {string.Join(' ', args)}: {result}");
            return result;
        }
        finally
        {
            // ctr run --rm deletes it; this is for a run that timed out or failed half-way.
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }

    private static string Climb(string hostPath) => string.Concat(Enumerable.Repeat("../", Depth)) + hostPath.TrimStart('/');

    // PAX, so that names and link names longer than ustar's 100 bytes stay whole.
    private static byte[] Tar(IEnumerable<TarEntry> entries)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }
        return tar.ToArray();
    }

    private static PaxTarEntry Regular(string name, string content) => Regular(name, Encoding.UTF8.GetBytes(content), Modes.File);

    private static PaxTarEntry Regular(string name, byte[] content, UnixFileMode mode) => new(TarEntryType.RegularFile, name)
    {
        Mode = mode,
        DataStream = new MemoryStream(content),
    };

    private static PaxTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0b111_101_101 };

    private static PaxTarEntry Symlink(string name, string target) => new(TarEntryType.SymbolicLink, name) { LinkName = target };

    private static PaxTarEntry HardLink(string name, string target) => new(TarEntryType.HardLink, name) { LinkName = target };

    private static async Task<(string Links, string Inode)> StatLinksAsync(string path)
    {
        var fields = (await StatAsync(path, "%h %i")).Split(' ');
        return (fields[0], fields[1]);
    }

    // lstat(2) through stat(1): .NET has no link count.
    private static async Task<string> StatAsync(string path, string format)
    {
        var result = await ProcessRunner.RunAsync("stat", ["-c", format, path], null, TimeSpan.FromSeconds(10));
        Assert.True(result.Succeeded, result.ToString());
        return result.Stdout.Trim();
    }
}
