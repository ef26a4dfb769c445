using Containerd.Shim.Wasm;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// When the compile-cache folder may be used: root's and writable by root only, all the way from /, without symlinks;
/// a sticky folder such as /tmp on the way is fine, as the cache itself it is not. Runs as root, as the shim does.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class CacheFolderTrustTests : IDisposable
{
    private const int Nobody = 65534;
    private readonly string _dir = Directory.CreateTempSubdirectory("cache-trust-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_missing_folder_is_created_roots_and_0700_and_trusted()
    {
        var folder = Path.Combine(_dir, "a", "cache");

        Assert.Null(CacheFolderTrust.Prepare(folder));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(_dir, "a")));
        Assert.NotNull(DirectoryModuleCache.OpenTrusted(folder, 1 << 20, DirectoryModuleCache.DigestOf([1]), out var refusal));
        Assert.Null(refusal);
    }

    [Fact]
    public void A_folder_others_may_write_is_refused()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "open")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0b111_111_111);

        Assert.Contains("mode 0777", CacheFolderTrust.FolderProblem(folder));
        Assert.Null(DirectoryModuleCache.OpenTrusted(folder, 1 << 20, DirectoryModuleCache.DigestOf([1]), out var refusal));
        Assert.Contains(folder, refusal);
    }

    [Fact]
    public void A_sticky_world_writable_cache_folder_is_refused_too()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "sticky")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0b1_111_111_111);

        Assert.Contains("others than root may write", CacheFolderTrust.FolderProblem(folder));
    }

    [Fact]
    public void A_folder_of_another_owner_is_refused_even_below_it()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "theirs")).FullName;
        var below = Directory.CreateDirectory(Path.Combine(folder, "cache")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0b111_000_000);
        Chown(folder, Nobody);

        Assert.Contains($"{folder} is owned by uid {Nobody}", CacheFolderTrust.FolderProblem(folder));
        Assert.Contains($"{folder} is owned by uid {Nobody}", CacheFolderTrust.FolderProblem(below));
    }

    [Fact]
    public void A_symlink_anywhere_on_the_path_is_refused()
    {
        var real = Directory.CreateDirectory(Path.Combine(_dir, "real", "cache")).FullName;
        var link = Path.Combine(_dir, "link");
        Directory.CreateSymbolicLink(link, Path.Combine(_dir, "real"));

        Assert.Null(CacheFolderTrust.FolderProblem(real));
        Assert.Contains($"{link} is a symbolic link", CacheFolderTrust.FolderProblem(Path.Combine(link, "cache")));
    }

    [Fact]
    public void A_sticky_folder_on_the_way_is_accepted()
    {
        // /tmp itself is the usual case; this is one of ours, sticky and world-writable, root's.
        var sticky = Directory.CreateDirectory(Path.Combine(_dir, "tmp")).FullName;
        File.SetUnixFileMode(sticky, (UnixFileMode)0b1_111_111_111);
        var folder = Directory.CreateDirectory(Path.Combine(sticky, "cache")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0b111_000_000);

        Assert.Null(CacheFolderTrust.FolderProblem(folder));
        File.SetUnixFileMode(sticky, (UnixFileMode)0b111_111_111);
        Assert.Contains($"{sticky} has mode 0777", CacheFolderTrust.FolderProblem(folder));
    }

    [Fact]
    public void An_artifact_file_others_may_write_or_owned_by_another_uid_is_not_used()
    {
        var digest = DirectoryModuleCache.DigestOf("module"u8);
        var cache = DirectoryModuleCache.OpenTrusted(Path.Combine(_dir, "c"), 1 << 20, digest, out _)!;
        cache.Store("wasmtime", "0123456789abcdef", [1, 2, 3]);
        var found = cache.Find("wasmtime", "0123456789abcdef", out _)!;
        var file = new FileInfo(found.Path!).LinkTarget!;
        found.Dispose();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));

        File.SetUnixFileMode(file, (UnixFileMode)0b110_110_110);
        Assert.Null(cache.Find("wasmtime", "0123456789abcdef", out var problem));
        Assert.Contains("others than root may write", problem);

        File.SetUnixFileMode(file, (UnixFileMode)0b110_000_000);
        Chown(file, Nobody);
        Assert.Null(cache.Find("wasmtime", "0123456789abcdef", out problem));
        Assert.Contains($"owned by uid {Nobody}", problem);
    }

    [Fact]
    public void A_found_artifact_is_named_by_the_descriptor_that_was_hashed()
    {
        var digest = DirectoryModuleCache.DigestOf("module"u8);
        var cache = DirectoryModuleCache.OpenTrusted(Path.Combine(_dir, "d"), 1 << 20, digest, out _)!;
        cache.Store("wasmtime", "0123456789abcdef", [1, 2, 3]);

        using var found = cache.Find("wasmtime", "0123456789abcdef", out _)!;
        var entry = new FileInfo(found.Path!).LinkTarget!;
        // Replace the entry by name: what the descriptor reads does not change.
        File.Delete(entry);
        File.WriteAllBytes(entry, [6, 6, 6]);

        Assert.NotNull(found.Handle);
        Assert.StartsWith("/proc/self/fd/", found.Path);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(found.Path!));
    }

    private static void Chown(string path, int uid)
    {
        var result = Containerd.Testing.ProcessRunner.RunAsync("chown", [$"{uid}:{uid}", path]).GetAwaiter().GetResult();
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}
