using System.Text;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// What the README tells a user to type works as written: <c>make load</c> into a containerd, then the README's own
/// <c>ctr run</c> line, read from README.md so the two cannot drift apart.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ReadmeTests
{
    [Fact]
    public async Task Make_load_then_the_readme_ctr_run_line_prints_hello()
    {
        var shimDir = await ShimBinary.DirAsync();
        await using var containerd = await ContainerdFixture.StartAsync(new ContainerdOptions { ShimBinDir = shimDir });

        var load = await ProcessRunner.RunAsync("make",
            ["--no-print-directory", "-C", RepositoryLayout.RepoRoot, "load",
             $"CONTAINERD_ADDRESS={containerd.Address}", $"CTR={containerd.CtrPath}", $"OUT={RepositoryLayout.OutDir}"],
            new Dictionary<string, string> { ["CONTAINERD_NAMESPACE"] = containerd.Namespace },
            TimeSpan.FromMinutes(5));
        Assert.True(load.Succeeded, load.ToString());
        Assert.Contains("ghcr.io/containerd/runwasi/wasi-demo-app:latest", await containerd.RunCtrAsync("images", "ls", "-q"));

        var line = File.ReadLines(Path.Combine(RepositoryLayout.RepoRoot, "README.md"))
            .Single(l => l.Contains("ctr run --rm --runtime=io.containerd.wasmtime.v1 ghcr.io/containerd/runwasi/wasi-demo-app:", StringComparison.Ordinal));
        var words = ShellWords(line);
        Assert.Equal(["sudo", "ctr", "run"], words.Take(3));

        var result = await containerd.CtrAsync(words.Skip(2).ToArray());
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
        Assert.Contains("exiting", result.Stderr);
    }

    /// <summary>Splits a shell command line on blanks, honouring single quotes (all the README uses).</summary>
    private static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        bool quoted = false, inWord = false;
        foreach (var c in line.Trim())
        {
            if (c == '\'')
            {
                quoted = !quoted;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c) && !quoted)
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }
        if (inWord)
        {
            words.Add(current.ToString());
        }
        return words;
    }
}
