using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Compiled artifacts of rootfs modules in a host folder shared by every instance process:
/// <c>&lt;root&gt;/&lt;engine&gt;/&lt;compatibility hash&gt;/&lt;module sha256&gt;.&lt;artifact sha256&gt;</c>. The module digest is the
/// key, the artifact digest lets a reader detect a corrupt or truncated file. Files are written under a private
/// name and renamed into place, so racing processes see either no entry or a whole one, and never changed in place,
/// so a file another process has memory-mapped stays intact. A hit refreshes the file's modification time, which
/// orders eviction (least recently used first) once the folder exceeds its size bound. Folders are made 0700 and files
/// 0600 whatever the umask; <see cref="OpenTrusted"/> uses a folder only when it is root's alone, and a file found is
/// checked, hashed and handed to the engine through one descriptor (see <see cref="CompiledArtifact.Handle"/>).
/// </summary>
/// <param name="root">The cache folder.</param>
/// <param name="maxBytes">The size bound of all entries together; after a store, the least recently used entries
/// go until the rest fits.</param>
/// <param name="moduleDigest">The module's <c>sha256:…</c> digest (of its bytes as they are in the rootfs).</param>
internal sealed class DirectoryModuleCache(string root, long maxBytes, string moduleDigest) : ICompiledModuleCache
{
    // Leftovers of writers that died between write and rename are removed once they are this old.
    private static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(10);

    private readonly string _module = Hex(moduleDigest);

    /// <summary>
    /// The cache in <paramref name="root"/>, which is created root-owned 0700 when missing; null, with the reason in
    /// <paramref name="refusal"/>, when the folder or the path to it is a symlink, is not root's, or others may write
    /// to it (a sticky folder such as /tmp on the way excepted), or cannot be made.
    /// </summary>
    public static DirectoryModuleCache? OpenTrusted(string root, long maxBytes, string moduleDigest, out string? refusal)
    {
        var full = Path.GetFullPath(root);
        refusal = CacheFolderTrust.Prepare(full);
        return refusal is null ? new DirectoryModuleCache(full, maxBytes, moduleDigest) : null;
    }

    /// <inheritdoc/>
    public string Description => root;

    /// <summary>The sha256 digest (<c>sha256:…</c>) of <paramref name="bytes"/>.</summary>
    public static string DigestOf(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <inheritdoc/>
    public CompiledArtifact? Find(string engine, string compatibilityHash, out string? problem)
    {
        problem = null;
        var folder = Folder(engine, compatibilityHash);
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(folder, _module + ".*").ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        if (CacheFolderTrust.FolderProblem(folder) is { } untrusted)
        {
            problem = $"not trusted: {untrusted}";
            return null;
        }
        foreach (var file in candidates)
        {
            var expected = Path.GetFileName(file)[(_module.Length + 1)..];
            SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (FileNotFoundException)
            {
                continue; // evicted by another process a moment ago
            }
            string actual;
            try
            {
                if (CacheFolderTrust.FileProblem(handle, file) is { } bad)
                {
                    problem = $"not trusted: {bad}";
                    handle.Dispose();
                    continue;
                }
                actual = HashOf(handle);
            }
            catch
            {
                handle.Dispose();
                throw;
            }
            if (actual != expected)
            {
                handle.Dispose();
                problem = $"{file} is corrupt (its content has digest sha256:{actual})";
                TryDelete(file);
                continue;
            }
            try
            {
                File.SetLastWriteTimeUtc(file, DateTime.UtcNow);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A read-only cache still serves; only its eviction order suffers.
            }
            // The engine maps the file through the descriptor that was hashed: a name swapped since cannot slip in.
            return new CompiledArtifact("sha256:" + actual, $"/proc/self/fd/{handle.DangerousGetHandle()}", default) { Handle = handle };
        }
        return null;
    }

    /// <inheritdoc/>
    public void Store(string engine, string compatibilityHash, byte[] artifact)
    {
        var folder = Folder(engine, compatibilityHash);
        // Explicit modes: the instance process runs with the container's umask, which may be 0.
        CacheFolderTrust.CreateFolders(folder);
        var digest = Convert.ToHexStringLower(SHA256.HashData(artifact));
        var final = Path.Combine(folder, $"{_module}.{digest}");
        if (!File.Exists(final))
        {
            // A dot name: never matched by a reader's "<module>.*" lookup while it is being written.
            var partial = Path.Combine(folder, $".{_module}.{Environment.ProcessId}.{Guid.NewGuid():N}.partial");
            try
            {
                using (var stream = new FileStream(CacheFolderTrust.CreateFile(partial), FileAccess.Write))
                {
                    stream.Write(artifact);
                }
                File.Move(partial, final, overwrite: true);
            }
            catch
            {
                TryDelete(partial);
                throw;
            }
        }
        foreach (var other in Directory.EnumerateFiles(folder, _module + ".*"))
        {
            // An older artifact of the same module and engine (a compiler need not be deterministic) is dead weight.
            if (other != final)
            {
                TryDelete(other);
            }
        }
        Evict(keep: final);
    }

    /// <inheritdoc/>
    public void Discard(string engine, string compatibilityHash, CompiledArtifact artifact)
    {
        // A found artifact is named by its descriptor; the entry to remove is the file the descriptor was opened on.
        var path = artifact.Handle is not null && artifact.Path is { } fdPath ? new FileInfo(fdPath).LinkTarget : artifact.Path;
        if (path is not null && path.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal) && IsEntryName(Path.GetFileName(path)))
        {
            TryDelete(path);
        }
    }

    /// <summary>Deletes least recently used entries until all entries together fit in the size bound.</summary>
    public void Evict(string? keep = null)
    {
        var entries = new List<FileInfo>();
        var now = DateTime.UtcNow;
        foreach (var file in new DirectoryInfo(root).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            if (file.Name.EndsWith(".partial", StringComparison.Ordinal))
            {
                if (now - file.LastWriteTimeUtc > AbandonedAfter)
                {
                    TryDelete(file.FullName);
                }
                continue;
            }
            if (!IsEntryName(file.Name))
            {
                continue; // not ours (the folder may hold older caches' files)
            }
            entries.Add(file);
        }
        var total = entries.Sum(f => f.Length);
        // The entry just written goes last: evicting it first would make the store pointless.
        foreach (var file in entries.OrderBy(f => f.FullName == keep).ThenBy(f => f.LastWriteTimeUtc))
        {
            if (total <= maxBytes)
            {
                break;
            }
            TryDelete(file.FullName);
            total -= file.Length;
        }
    }

    private string Folder(string engine, string compatibilityHash) => Path.Combine(root, engine, compatibilityHash);

    private static string HashOf(SafeFileHandle handle)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[128 << 10];
        long offset = 0;
        int n;
        while ((n = RandomAccess.Read(handle, buffer, offset)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            offset += n;
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    // <64 hex>.<64 hex>
    private static bool IsEntryName(string name) =>
        name.Length == 129 && name[64] == '.' && name.AsSpan(0, 64).IndexOfAnyExcept("0123456789abcdef") < 0
        && name.AsSpan(65).IndexOfAnyExcept("0123456789abcdef") < 0;

    private static string Hex(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) && digest.Length == 71
            ? digest[7..]
            : throw new ArgumentException($"not a sha256 digest: {digest}", nameof(digest));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another process's eviction or a read-only folder: the entry is someone else's problem now.
        }
    }
}
