using System.Runtime.Versioning;

namespace NodeInstaller;

/// <summary>What one installer run does.</summary>
public sealed record InstallOptions
{
    /// <summary>containerd's config.toml; created when missing.</summary>
    public required string ConfigPath { get; init; }

    /// <summary>Where the shim goes: a folder on the containerd service's PATH. Null skips copying.</summary>
    public string? BinDir { get; init; }

    /// <summary>The folder holding the shim binary and libwasmtime.so to copy.</summary>
    public required string SourceDir { get; init; }

    /// <summary>The CRI runtime handler name a RuntimeClass names.</summary>
    public string RuntimeName { get; init; } = "wasmtime";

    /// <summary>The runtime type containerd maps to the shim binary <c>containerd-shim-wasmtime-v1</c>.</summary>
    public string RuntimeType { get; init; } = "io.containerd.wasmtime.v1";

    /// <summary>The containerd version ("1.6", "1.7", "2.1"), or null to go by the config's version key.</summary>
    public string? ContainerdVersion { get; init; }

    /// <summary>Change nothing; print what would change.</summary>
    public bool DryRun { get; init; }
}

/// <summary>Copies the shim into place and merges the runtime handler into containerd's config, both idempotently.</summary>
/// <remarks>Linux only: it sets Unix file modes, and containerd's shims run on Linux nodes.</remarks>
[SupportedOSPlatform("linux")]
public static class Installer
{
    /// <summary>The files a node needs: the shim executable and the native engine library it loads from its own folder.</summary>
    public static IReadOnlyList<string> ShimFiles { get; } = ["containerd-shim-wasmtime-v1", "libwasmtime.so"];

    /// <summary>Runs the installation and reports each step on <paramref name="output"/>.</summary>
    /// <param name="options">What to do.</param>
    /// <param name="output">Where progress (and, in a dry run, the diff) goes.</param>
    /// <returns>True when something changed (or would change, in a dry run): containerd must be restarted to see it.</returns>
    /// <exception cref="InstallerException">A file is missing, the config cannot be merged, or a write failed.</exception>
    public static bool Run(InstallOptions options, TextWriter output)
    {
        var changed = false;
        if (options.BinDir is { } binDir)
        {
            foreach (var name in ShimFiles)
            {
                changed |= CopyFile(Path.Combine(options.SourceDir, name), Path.Combine(binDir, name), options.DryRun, output);
            }
        }

        var configPath = options.ConfigPath;
        string text;
        try
        {
            text = File.Exists(configPath) ? File.ReadAllText(configPath) : "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InstallerException($"cannot read {configPath}: {e.Message}", e);
        }
        var result = ConfigMerger.Merge(text, options.RuntimeName, options.RuntimeType, MajorVersion(options.ContainerdVersion), configPath);
        if (!result.Changed)
        {
            output.WriteLine($"{configPath}: [{result.Table}] already has runtime_type = \"{options.RuntimeType}\"");
            return changed;
        }
        if (options.DryRun)
        {
            output.WriteLine($"{configPath}: would add [{result.Table}] (config version {result.ConfigVersion}):");
            output.Write(TextDiff.Unified(text, result.Text, configPath));
            return true;
        }
        WriteAtomically(configPath, result.Text);
        output.WriteLine($"{configPath}: added [{result.Table}] runtime_type = \"{options.RuntimeType}\" (config version {result.ConfigVersion})");
        return true;
    }

    /// <summary>Maps "1.6", "1.7.24", "v2.1.4", "2" onto 1 or 2; null stays null.</summary>
    /// <exception cref="InstallerException">Not a containerd version this tool knows.</exception>
    public static int? MajorVersion(string? version)
    {
        if (string.IsNullOrWhiteSpace(version))
        {
            return null;
        }
        var v = version.Trim().TrimStart('v');
        var major = v.Split('.')[0];
        return major switch
        {
            "1" => 1,
            "2" => 2,
            _ => throw new InstallerException($"--containerd-version '{version}' is not a containerd 1.x or 2.x version"),
        };
    }

    private static bool CopyFile(string source, string target, bool dryRun, TextWriter output)
    {
        if (!File.Exists(source))
        {
            throw new InstallerException($"{source} does not exist: --source-dir must hold {string.Join(" and ", ShimFiles)}");
        }
        if (File.Exists(target) && SameContent(source, target))
        {
            output.WriteLine($"{target}: up to date");
            return false;
        }
        if (dryRun)
        {
            output.WriteLine($"{target}: would copy from {source}");
            return true;
        }
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            // Copy beside the target, then rename over it: a shim that is running keeps its old file, and containerd never
            // starts a half-written one.
            var partial = $"{target}.{Environment.ProcessId}.partial";
            File.Copy(source, partial, overwrite: true);
            File.SetUnixFileMode(partial, (UnixFileMode)0b111_101_101);
            File.Move(partial, target, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InstallerException($"cannot install {target}: {e.Message}", e);
        }
        output.WriteLine($"{target}: installed from {source}");
        return true;
    }

    private static bool SameContent(string a, string b)
    {
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        if (fa.Length != fb.Length)
        {
            return false;
        }
        using var sa = fa.OpenRead();
        using var sb = fb.OpenRead();
        var ba = new byte[81920];
        var bb = new byte[81920];
        while (true)
        {
            var n = sa.ReadAtLeast(ba, ba.Length, throwOnEndOfStream: false);
            var m = sb.ReadAtLeast(bb, bb.Length, throwOnEndOfStream: false);
            if (n != m || !ba.AsSpan(0, n).SequenceEqual(bb.AsSpan(0, m)))
            {
                return false;
            }
            if (n == 0)
            {
                return true;
            }
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        try
        {
            var full = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            var partial = $"{full}.{Environment.ProcessId}.partial";
            File.WriteAllText(partial, text);
            // Keep the mode of the file being replaced (containerd's config may be 0600).
            File.SetUnixFileMode(partial, File.Exists(full) ? File.GetUnixFileMode(full) : (UnixFileMode)0b110_100_100);
            File.Move(partial, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InstallerException($"cannot write {path}: {e.Message}", e);
        }
    }
}
