namespace Containerd.Testing;

/// <summary>Where the repository and its build output live, found from the running assembly.</summary>
public static class RepositoryLayout
{
    private static readonly Lazy<string> Root = new(FindRoot);

    /// <summary>The repository root: the nearest ancestor folder holding Directory.Build.props.</summary>
    /// <exception cref="DirectoryNotFoundException">No ancestor of the test assembly or working directory is the repository.</exception>
    public static string RepoRoot => Root.Value;

    /// <summary>The build output folder: env OUT, or &lt;repo&gt;/out.</summary>
    public static string OutDir =>
        Environment.GetEnvironmentVariable("OUT") is { Length: > 0 } o ? Path.GetFullPath(o) : Path.Combine(RepoRoot, "out");

    /// <summary>The hack/ scripts folder.</summary>
    public static string HackDir => Path.Combine(RepoRoot, "hack");

    private static string FindRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props"))
                    && Directory.Exists(Path.Combine(dir.FullName, "hack")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new DirectoryNotFoundException(
            $"no folder holding Directory.Build.props above {AppContext.BaseDirectory}");
    }
}
