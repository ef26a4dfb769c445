using Containerd.Shim.Wasm;
using Xunit;

namespace Shim.Tests;

/// <summary>The rootfs modules' cache folder on a real filesystem: lookups, digest checks, atomic names, eviction.</summary>
public sealed class DirectoryModuleCacheTests : IDisposable
{
    private const string Engine = "wasmtime";
    private const string Hash = "0123456789abcdef";

    private readonly string _root = Directory.CreateTempSubdirectory("module-cache-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Stored_artifact_is_found_as_a_file_with_its_digest()
    {
        var cache = Cache(1 << 20, "module a");
        var artifact = Artifact(1000, 1);

        cache.Store(Engine, Hash, artifact);
        var found = cache.Find(Engine, Hash, out var problem);

        Assert.Null(problem);
        Assert.NotNull(found);
        Assert.Equal(DirectoryModuleCache.DigestOf(artifact), found.Digest);
        Assert.Equal(artifact, File.ReadAllBytes(found.Path!));
        Assert.Empty(Directory.EnumerateFiles(_root, ".*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Another_compatibility_hash_or_module_misses()
    {
        Cache(1 << 20, "module a").Store(Engine, Hash, Artifact(1000, 1));

        Assert.Null(Cache(1 << 20, "module a").Find(Engine, "fedcba9876543210", out _));
        Assert.Null(Cache(1 << 20, "module b").Find(Engine, Hash, out _));
    }

    [Fact]
    public void Corrupt_file_is_reported_and_removed()
    {
        var cache = Cache(1 << 20, "module a");
        cache.Store(Engine, Hash, Artifact(1000, 1));
        string file;
        using (var first = cache.Find(Engine, Hash, out _)!)
        {
            // The path is the descriptor's (/proc/self/fd/N): the file it names is the entry on disk.
            file = new FileInfo(first.Path!).LinkTarget ?? first.Path!;
        }
        File.WriteAllBytes(file, Artifact(400, 2));

        var found = cache.Find(Engine, Hash, out var problem);

        Assert.Null(found);
        Assert.Contains("is corrupt", problem);
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void Size_bound_evicts_the_least_recently_used_entries()
    {
        var a = Cache(2500, "module a");
        var b = Cache(2500, "module b");
        var c = Cache(2500, "module c");
        a.Store(Engine, Hash, Artifact(1000, 1));
        b.Store(Engine, Hash, Artifact(1000, 2));
        // a was used after b: b is the least recently used when c arrives.
        File.SetLastWriteTimeUtc(b.Find(Engine, Hash, out _)!.Path!, DateTime.UtcNow.AddMinutes(-10));
        File.SetLastWriteTimeUtc(a.Find(Engine, Hash, out _)!.Path!, DateTime.UtcNow.AddMinutes(-5));
        a.Find(Engine, Hash, out _);

        c.Store(Engine, Hash, Artifact(1000, 3));

        Assert.NotNull(a.Find(Engine, Hash, out _));
        Assert.Null(b.Find(Engine, Hash, out _));
        Assert.NotNull(c.Find(Engine, Hash, out _));
        Assert.True(Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) <= 2500);
    }

    [Fact]
    public void Abandoned_partial_files_are_removed_and_foreign_files_left_alone()
    {
        var cache = Cache(1 << 20, "module a");
        var folder = Path.Combine(_root, Engine, Hash);
        Directory.CreateDirectory(folder);
        var partial = Path.Combine(folder, ".abc.1.x.partial");
        File.WriteAllBytes(partial, Artifact(10, 1));
        File.SetLastWriteTimeUtc(partial, DateTime.UtcNow.AddHours(-1));
        var foreign = Path.Combine(_root, "cache.toml");
        File.WriteAllText(foreign, "[cache]\n");

        cache.Store(Engine, Hash, Artifact(100, 2));

        Assert.False(File.Exists(partial));
        Assert.True(File.Exists(foreign));
    }

    private DirectoryModuleCache Cache(long maxBytes, string module) =>
        new(_root, maxBytes, DirectoryModuleCache.DigestOf(System.Text.Encoding.UTF8.GetBytes(module)));

    private static byte[] Artifact(int size, byte seed) => Enumerable.Range(0, size).Select(i => (byte)(i * 31 + seed)).ToArray();
}
