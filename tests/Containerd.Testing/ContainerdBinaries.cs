namespace Containerd.Testing;

/// <summary>Locates (fetching on first use) the cached containerd package for a release line.</summary>
public static class ContainerdBinaries
{
    private static readonly SemaphoreSlim FetchLock = new(1, 1);

    /// <summary>
    /// Returns the folder holding containerd, ctr and containerd-shim-runc-v2 for <paramref name="version"/>,
    /// running hack/fetch-containerd.sh when it is not cached yet.
    /// </summary>
    /// <param name="version">"1.6", "1.7" or "2".</param>
    /// <param name="cancellationToken">Cancels the fetch.</param>
    /// <returns>The bin folder.</returns>
    /// <exception cref="InvalidOperationException">The fetch script failed.</exception>
    public static async Task<string> GetBinDirAsync(string version, CancellationToken cancellationToken = default)
    {
        var cached = Path.Combine(CacheRoot, version, "usr", "bin");
        if (IsComplete(version, cached))
        {
            return cached;
        }

        // Tests in one process share the cache; the script itself tolerates other processes.
        await FetchLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsComplete(version, cached))
            {
                return cached;
            }
            var script = Path.Combine(RepositoryLayout.HackDir, "fetch-containerd.sh");
            var result = await ProcessRunner.RunAsync(
                "bash", [script, version], timeout: TimeSpan.FromMinutes(10), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"{script} {version} failed: {result}");
            }
            var bin = result.Stdout.Trim().Split('\n')[^1].Trim();
            return Directory.Exists(bin) ? bin : cached;
        }
        finally
        {
            FetchLock.Release();
        }
    }

    /// <summary>The cache root the fetch script uses: env CONTAINERD_CACHE, else the XDG cache folder.</summary>
    public static string CacheRoot
    {
        get
        {
            if (Environment.GetEnvironmentVariable("CONTAINERD_CACHE") is { Length: > 0 } c)
            {
                return c;
            }
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x
                ? x
                : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache");
            return Path.Combine(xdg, "runwasi-dotnet", "containerd");
        }
    }

    private static bool IsComplete(string version, string bin) =>
        File.Exists(Path.Combine(CacheRoot, version, ".complete"))
        && File.Exists(Path.Combine(bin, "containerd"))
        && File.Exists(Path.Combine(bin, "ctr"));
}
