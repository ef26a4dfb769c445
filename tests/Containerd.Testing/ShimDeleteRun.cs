using System.Diagnostics;
using DeleteResponse = Containerd.Runtime.TaskV2.DeleteResponse;
using Xunit;

namespace Containerd.Testing;

/// <summary>
/// Runs a shim executable's <c>delete</c> action by hand, as containerd does after every shim connection closes, and
/// checks the kit's native answer after a clean shutdown (<c>src/Containerd.Shimkit/native/clean_delete.c</c>): with
/// <c>shim-clean-shutdown</c> in the bundle the response is a DeleteResponse with pid 0, status 0 and the current
/// time, written before .NET starts (the .NET side marks its start in <c>RUNWASI_DOTNET_TRACE</c>); without it the same
/// command goes on to .NET.
/// </summary>
public static class ShimDeleteRun
{
    /// <summary>The marker a server leaves in its bundle at a clean Shutdown (ShimDelete.CleanShutdownFile).</summary>
    public const string CleanShutdownFile = "shim-clean-shutdown";

    /// <summary>Runs <paramref name="binary"/> with <paramref name="args"/> in <paramref name="workingDirectory"/>,
    /// tracing to <paramref name="trace"/> when given; stdout as bytes (a protobuf message).</summary>
    public static async Task<(int Code, byte[] Stdout, string Stderr)> RunAsync(
        string binary, IEnumerable<string> args, string workingDirectory, string? trace = null)
    {
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        if (trace is not null)
        {
            psi.Environment["RUNWASI_DOTNET_TRACE"] = trace;
        }
        using var process = Process.Start(psi)!;
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        await copy;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }

    /// <summary>Asserts that <paramref name="stdout"/> is the clean answer, exited between <paramref name="after"/>
    /// and now.</summary>
    public static void AssertCleanResponse(byte[] stdout, DateTimeOffset after)
    {
        var response = DeleteResponse.Parser.ParseFrom(stdout);
        Assert.Equal(0u, response.Pid);
        Assert.Equal(0u, response.ExitStatus);
        Assert.InRange(response.ExitedAt.ToDateTimeOffset(), after.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
    }

    /// <summary>The whole contract on one shim executable, the way containerd calls it.</summary>
    public static async Task AssertAnsweredBeforeDotnetAsync(string binary)
    {
        var bundle = Directory.CreateTempSubdirectory("clean-delete-");
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(bundle.FullName, CleanShutdownFile), []);
            var trace = Path.Combine(bundle.FullName, "trace");
            string[] args = ["-namespace", "clean-delete-test", "-address", "/nonexistent/containerd.sock", "-id", "clean-delete",
                "-bundle", bundle.FullName, "delete"];
            var before = DateTimeOffset.UtcNow;
            var (code, stdout, stderr) = await RunAsync(binary, args, bundle.FullName, trace);

            Assert.True(code == 0, $"exit {code}: {stderr}");
            AssertCleanResponse(stdout, before);
            Assert.False(File.Exists(trace), $".NET ran: {(File.Exists(trace) ? File.ReadAllText(trace) : "")}");

            // Without the marker the same command goes on to .NET, which marks its start.
            File.Delete(Path.Combine(bundle.FullName, CleanShutdownFile));
            await RunAsync(binary, args, bundle.FullName, trace);
            Assert.Contains("main delete", File.ReadAllText(trace));
        }
        finally
        {
            bundle.Delete(recursive: true);
        }
    }
}
