using System.Diagnostics;

namespace Containerd.Testing;

/// <summary>WebAssembly text assembled to binary by wabt's wat2wasm (hack/deps.sh installs it), for the engines
/// that run binary modules only.</summary>
public static class Wat2Wasm
{
    /// <summary>The binary module of <paramref name="wat"/>.</summary>
    public static async Task<byte[]> AssembleAsync(string wat)
    {
        var dir = Directory.CreateTempSubdirectory("wat2wasm-");
        try
        {
            var source = Path.Combine(dir.FullName, "module.wat");
            var output = Path.Combine(dir.FullName, "module.wasm");
            await File.WriteAllTextAsync(source, wat).ConfigureAwait(false);
            using var process = Process.Start("wat2wasm", [source, "-o", output])
                ?? throw new InvalidOperationException("cannot start wat2wasm");
            await process.WaitForExitAsync().ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"wat2wasm exited with {process.ExitCode}");
            }
            return await File.ReadAllBytesAsync(output).ConfigureAwait(false);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
