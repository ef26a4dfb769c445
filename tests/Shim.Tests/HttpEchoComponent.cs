using System.Diagnostics;
using Containerd.Testing;

namespace Shim.Tests;

/// <summary>
/// The wasi:http echo component (tools/components/http-echo), built from source on first use: out/components/
/// http-echo.wasm, made with the npm toolchain pinned in tools/components.
/// </summary>
public static class HttpEchoComponent
{
    private static readonly Lazy<byte[]> Bytes = new(Build);

    public static string PathOf => Path.Combine(RepositoryLayout.OutDir, "components", "http-echo.wasm");

    public static byte[] Wasm => Bytes.Value;

    private static readonly Lazy<byte[]> Compiled = new(() =>
    {
        // The ~13 MB component takes tens of seconds to compile here; test classes share one artifact per build.
        var artifact = PathOf + $".{File.GetLastWriteTimeUtc(typeof(Containerd.Shim.Wasmtime.Http.WasiHttpServer).Assembly.Location).Ticks}.cwasm";
        if (File.Exists(artifact) && File.GetLastWriteTimeUtc(artifact) > File.GetLastWriteTimeUtc(PathOf))
        {
            return File.ReadAllBytes(artifact);
        }
        var bytes = Containerd.Shim.Wasmtime.Http.WasiHttpServer.Precompile(Wasm);
        File.WriteAllBytes(artifact + ".tmp", bytes);
        File.Move(artifact + ".tmp", artifact, overwrite: true);
        return bytes;
    });

    /// <summary>The component compiled by this build's engine.</summary>
    public static byte[] Precompiled => Compiled.Value;

    private static byte[] Build()
    {
        var path = PathOf;
        if (!File.Exists(path))
        {
            var tools = Path.Combine(RepositoryLayout.RepoRoot, "tools", "components");
            if (!Directory.Exists(Path.Combine(tools, "node_modules")))
            {
                Run(tools, "npm", "ci --no-audit --no-fund --loglevel=error");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            Run(tools, "node", $"http-echo/build.mjs {path}");
        }
        return File.ReadAllBytes(path);
    }

    private static void Run(string dir, string file, string args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args)
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {args} failed ({process.ExitCode}): {stderr.Result}{stdout.Result}");
        }
    }
}
