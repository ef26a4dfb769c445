using System.Diagnostics;
using Containerd.Testing;

namespace Shim.Tests;

/// <summary>
/// The wasi:http echo component (tools/components/http-echo), built from source on first use: out/components/
/// http-echo.wasm, made with the npm toolchain pinned in tools/components.
/// </summary>
public static class HttpEchoComponent
{
    private static readonly HttpTestComponent Component = new("http-echo", null);

    public static string PathOf => Component.PathOf;

    public static byte[] Wasm => Component.Wasm;

    /// <summary>The component compiled by this build's engine.</summary>
    public static byte[] Precompiled => Component.Precompiled;
}

/// <summary>
/// The outgoing-HTTP test component (tools/components/http-fetch): fetches the URL in its request's <c>url</c> query
/// parameter and answers with the upstream's status, body and x-upstream header (502 when the fetch fails).
/// </summary>
public static class HttpFetchComponent
{
    private static readonly HttpTestComponent Component = new("http-fetch", "http-fetch/fetch.js");

    public static string PathOf => Component.PathOf;

    public static byte[] Wasm => Component.Wasm;

    public static byte[] Precompiled => Component.Precompiled;
}

/// <summary>
/// The hostile component of the limit tests (tools/components/http-limits): <c>/spin</c> loops forever in wasm code,
/// <c>/endless</c> streams a body that never ends, any other path answers <c>ok</c>.
/// </summary>
public static class HttpLimitsComponent
{
    private static readonly HttpTestComponent Component = new("http-limits", "http-limits/limits.js");

    public static string PathOf => Component.PathOf;

    public static byte[] Wasm => Component.Wasm;

    public static byte[] Precompiled => Component.Precompiled;
}

/// <summary>A componentize-js wasi:http component of tools/components, built (and precompiled) on first use.</summary>
internal sealed class HttpTestComponent
{
    private readonly string _name;
    private readonly string? _handler;
    private readonly Lazy<byte[]> _bytes;
    private readonly Lazy<byte[]> _compiled;

    public HttpTestComponent(string name, string? handler)
    {
        _name = name;
        _handler = handler;
        _bytes = new(Build);
        _compiled = new(Compile);
    }

    public string PathOf => Path.Combine(RepositoryLayout.OutDir, "components", $"{_name}.wasm");

    public byte[] Wasm => _bytes.Value;

    public byte[] Precompiled => _compiled.Value;

    private byte[] Compile()
    {
        // The ~13 MB component takes tens of seconds to compile here; test classes share one artifact per build.
        var artifact = PathOf + $".{File.GetLastWriteTimeUtc(typeof(Containerd.Shim.Wasmtime.Http.WasiHttpServer).Assembly.Location).Ticks}.cwasm";
        var wasm = Wasm;
        if (File.Exists(artifact) && File.GetLastWriteTimeUtc(artifact) > File.GetLastWriteTimeUtc(PathOf))
        {
            return File.ReadAllBytes(artifact);
        }
        var bytes = Containerd.Shim.Wasmtime.Http.WasiHttpServer.Precompile(wasm);
        File.WriteAllBytes(artifact + ".tmp", bytes);
        File.Move(artifact + ".tmp", artifact, overwrite: true);
        return bytes;
    }

    private byte[] Build()
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
            Run(tools, "node", $"http-echo/build.mjs {path}{(_handler is null ? "" : " " + _handler)}");
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
