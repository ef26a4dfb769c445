using DeleteResponse = Containerd.Runtime.TaskV2.DeleteResponse;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// containerd runs <c>shim delete</c> after every shim connection closes. When the server (normal mode) or the
/// daemon's sandbox (shared mode) left <c>shim-clean-shutdown</c> in the bundle, the executable's native constructor
/// answers before .NET starts: the response is a DeleteResponse with pid 0, status 0 and the current time, and the
/// .NET side (which marks its start in <c>RUNWASI_DOTNET_TRACE</c>) never runs.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CleanShutdownDeleteTests
{
    [Theory]
    [InlineData("containerd-shim-wasmtime-v1")]
    [InlineData("containerd-shim-wasmtimed-v1")]
    public async Task Delete_after_a_clean_shutdown_is_answered_before_dotnet_starts(string shim)
    {
        var bundle = Directory.CreateTempSubdirectory("clean-delete-");
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(bundle.FullName, "shim-clean-shutdown"), []);
            var trace = Path.Combine(bundle.FullName, "trace");
            var before = DateTimeOffset.UtcNow;
            var (code, stdout) = await RunDeleteAsync(shim, bundle.FullName, trace);

            Assert.Equal(0, code);
            var response = DeleteResponse.Parser.ParseFrom(stdout);
            Assert.Equal(0u, response.Pid);
            Assert.Equal(0u, response.ExitStatus);
            Assert.InRange(response.ExitedAt.ToDateTimeOffset(), before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.False(File.Exists(trace), $".NET ran: {(File.Exists(trace) ? File.ReadAllText(trace) : "")}");

            // Without the marker the same command goes on to .NET, which marks its start.
            File.Delete(Path.Combine(bundle.FullName, "shim-clean-shutdown"));
            await RunDeleteAsync(shim, bundle.FullName, trace);
            Assert.Contains("main delete", File.ReadAllText(trace));
        }
        finally
        {
            bundle.Delete(recursive: true);
        }
    }

    private static async Task<(int Code, byte[] Stdout)> RunDeleteAsync(string shim, string bundle, string trace)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(Path.Combine(await ShimBinary.DirAsync(), shim))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = bundle,
        };
        foreach (var arg in (string[])["-namespace", "clean-delete-test", "-address", "/nonexistent/containerd.sock", "-id", "clean-delete", "-bundle", bundle, "delete"])
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment["RUNWASI_DOTNET_TRACE"] = trace;
        using var process = System.Diagnostics.Process.Start(psi)!;
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        await copy;
        await stderr;
        return (process.ExitCode, stdout.ToArray());
    }
}
