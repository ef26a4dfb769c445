using System.Diagnostics;

namespace Containerd.Testing;

/// <summary>Runs a command to completion, capturing its output, and kills it when it overruns.</summary>
public static class ProcessRunner
{
    /// <summary>Runs <paramref name="fileName"/> with <paramref name="args"/> and waits for it to exit.</summary>
    /// <param name="fileName">The program to run (a path, or a name looked up on PATH).</param>
    /// <param name="args">The arguments, passed without shell interpretation.</param>
    /// <param name="environment">Extra or overriding environment variables for the child.</param>
    /// <param name="timeout">How long to wait before killing the process tree (default 2 minutes).</param>
    /// <param name="cancellationToken">Cancels the wait and kills the process tree.</param>
    /// <returns>The exit code and captured output.</returns>
    /// <exception cref="TimeoutException">The process did not exit in time; it has been killed.</exception>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> args,
        IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        if (environment is not null)
        {
            foreach (var (k, v) in environment)
            {
                psi.Environment[k] = v;
            }
        }

        using var process = Process.Start(psi)
            ?? throw new InvalidOperationException($"could not start {fileName}");
        // Nothing reads our stdin; closing it stops tools that would otherwise wait for input.
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);

        var limit = timeout ?? TimeSpan.FromMinutes(2);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited between the timeout and the kill.
            }
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            var partial = new ProcessResult(-1, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
            throw new TimeoutException(
                $"{fileName} {string.Join(' ', psi.ArgumentList)} did not exit within {limit}; killed.\n{partial}");
        }
        return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
