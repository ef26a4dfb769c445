namespace Containerd.Testing;

/// <summary>
/// The installed wasmtime shim that integration tests run: <c>$SHIM_BIN_DIR</c> when the Makefile set it (it installs
/// into <c>out/test-prefix</c> first), otherwise this run installs it once with <c>make install PREFIX=out/test-prefix</c>,
/// so the tests always exercise exactly what a user installs: the binary with libwasmtime.so beside it.
/// </summary>
public static class ShimBinary
{
    /// <summary>The shim executable's file name.</summary>
    public const string Name = "containerd-shim-wasmtime-v1";

    private static readonly Lazy<Task<string>> Installed = new(InstallAsync);

    /// <summary>The folder holding the installed shim and its native library.</summary>
    public static Task<string> DirAsync() => Installed.Value;

    /// <summary>The installed shim executable.</summary>
    public static async Task<string> PathAsync() => Path.Combine(await DirAsync(), Name);

    private static async Task<string> InstallAsync()
    {
        if (Environment.GetEnvironmentVariable("SHIM_BIN_DIR") is { Length: > 0 } dir && File.Exists(Path.Combine(dir, Name)))
        {
            return Path.GetFullPath(dir);
        }
        var prefix = Path.Combine(RepositoryLayout.OutDir, "test-prefix");
        var result = await ProcessRunner.RunAsync(
            "make", ["-C", RepositoryLayout.RepoRoot, "install", $"PREFIX={prefix}", $"OUT={RepositoryLayout.OutDir}"],
            timeout: TimeSpan.FromMinutes(15));
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"make install PREFIX={prefix} failed:\n{result}");
        }
        return Path.Combine(prefix, "bin");
    }
}
