using System.Collections.Concurrent;
using System.Diagnostics;
using ImageBuilder;

namespace Containerd.Testing;

/// <summary>An image tarball built for the tests.</summary>
/// <param name="Name">The full image name it imports as.</param>
/// <param name="TarPath">The OCI image-layout tarball.</param>
/// <param name="ManifestDigest">The digest of its image manifest.</param>
public sealed record TestImage(string Name, string TarPath, string ManifestDigest);

/// <summary>
/// Builds the test images on demand into &lt;out&gt;/images/ with the image builder library. Each tarball's file name
/// carries a hash of its content, so an unchanged image is written once and a changed input gives a new file.
/// The inputs that are built from source here (the demo wasm, the pause binary) are rebuilt when their source is newer.
/// </summary>
public static class TestImages
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<TestImage>>> Built = new();

    /// <summary>The folder the tarballs go to.</summary>
    public static string ImagesDir => Path.Combine(RepositoryLayout.OutDir, "images");

    /// <summary>The demo wasm module (built from tools/wasi-demo-app/main.c by <see cref="EnsureDemoWasmAsync"/>).</summary>
    public static string DemoWasmPath => Path.Combine(RepositoryLayout.OutDir, "wasm", "wasi-demo-app.wasm");

    /// <summary>The static pause binary (built from tools/pause/pause.c by <see cref="EnsurePauseBinaryAsync"/>).</summary>
    public static string PauseBinaryPath => Path.Combine(RepositoryLayout.OutDir, "pause", "pause");

    /// <summary>The static busybox the busybox image is made of (Debian's busybox-static).</summary>
    public const string BusyboxBinaryPath = "/bin/busybox";

    /// <summary><c>docker.io/library/busybox:latest</c> from Debian's busybox-static, linux/amd64, cmd <c>sh</c>.</summary>
    public static Task<TestImage> BuildBusyboxAsync() =>
        Once("busybox", () => Task.FromResult(KnownImages.Busybox(BusyboxBinaryPath)));

    /// <summary><c>registry.k8s.io/pause:3.9</c> (the harness's sandbox image) from tools/pause/pause.c.</summary>
    public static Task<TestImage> BuildPauseAsync() =>
        Once("pause", async () => KnownImages.Pause(await EnsurePauseBinaryAsync().ConfigureAwait(false)));

    /// <summary>The demo image <c>ghcr.io/containerd/runwasi/wasi-demo-app:latest</c> (linux/amd64, /wasi-demo-app.wasm).</summary>
    public static Task<TestImage> BuildDemoAsync() =>
        Once("wasi-demo-app", async () => KnownImages.Demo(await EnsureDemoWasmAsync().ConfigureAwait(false)));

    /// <summary>The demo as a wasm-layer image (wasip1/wasm, wasm component layer, no rootfs diff ids).</summary>
    public static Task<TestImage> BuildDemoWasmLayerAsync() =>
        Once("wasi-demo-oci", async () => KnownImages.WasmLayer(await EnsureDemoWasmAsync().ConfigureAwait(false)));

    /// <summary>The demo as a CNCF wasm artifact (config application/vnd.wasm.config.v0+json, layer application/wasm).</summary>
    public static Task<TestImage> BuildDemoArtifactAsync() =>
        Once("wasi-demo-oci-artifact", async () => KnownImages.WasmArtifact(await EnsureDemoWasmAsync().ConfigureAwait(false)));

    /// <summary>Builds any image definition into the images folder, cached by content like the others.</summary>
    /// <param name="fileStem">The start of the tarball's file name.</param>
    /// <param name="image">The image.</param>
    public static TestImage Build(string fileStem, ImageDefinition image)
    {
        var tar = ImageLayoutWriter.WriteToArray(image, out var built);
        var hash = Digest.Hex(Digest.Sha256(tar));
        Directory.CreateDirectory(ImagesDir);
        var path = Path.Combine(ImagesDir, $"{fileStem}-{hash[..16]}.tar");
        if (!File.Exists(path))
        {
            // Unique per call: two test runs, or two fixtures of one run, may build the same image at once, and either
            // result is the same bytes.
            var partial = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.partial";
            File.WriteAllBytes(partial, tar);
            File.Move(partial, path, overwrite: true);
        }
        return new TestImage(image.Name, path, built.ManifestDigest);
    }

    /// <summary>Builds out/wasm/wasi-demo-app.wasm with clang, as the Makefile does, unless it is newer than its source.</summary>
    public static Task<string> EnsureDemoWasmAsync() => EnsureBuiltAsync(
        DemoWasmPath,
        Path.Combine(RepositoryLayout.RepoRoot, "tools", "wasi-demo-app", "main.c"),
        "clang",
        source => ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-o", DemoWasmPath, source]);

    /// <summary>out/wasm/wasi-malloc-probe.wasm: the C program that mallocs 1 MiB blocks until malloc fails.</summary>
    public static string MallocProbeWasmPath => Path.Combine(RepositoryLayout.OutDir, "wasm", "wasi-malloc-probe.wasm");

    /// <summary>Builds out/wasm/wasi-malloc-probe.wasm with clang, as the Makefile does, unless it is newer than its source.</summary>
    public static Task<string> EnsureMallocProbeWasmAsync() => EnsureBuiltAsync(
        MallocProbeWasmPath,
        Path.Combine(RepositoryLayout.RepoRoot, "tools", "wasi-malloc-probe", "main.c"),
        "clang",
        source => ["--target=wasm32-wasi", "-O2", "-Wall", "-Werror", "-o", MallocProbeWasmPath, source]);

    /// <summary>Builds out/pause/pause statically with gcc unless it is newer than its source.</summary>
    public static Task<string> EnsurePauseBinaryAsync() => EnsureBuiltAsync(
        PauseBinaryPath,
        Path.Combine(RepositoryLayout.RepoRoot, "tools", "pause", "pause.c"),
        "gcc",
        source => ["-static", "-O2", "-s", "-Wall", "-Werror", "-o", PauseBinaryPath, source]);

    /// <summary>The WASI 0.2 test component <paramref name="name"/> (<c>hello</c> or <c>neither</c>) under
    /// &lt;out&gt;/components/, built from tools/components by <c>make components</c> (incremental: nothing happens when
    /// it is up to date; the first build installs the npm toolchain and takes minutes).</summary>
    public static async Task<string> EnsureComponentAsync(string name)
    {
        var output = Path.Combine(RepositoryLayout.OutDir, "components", name + ".wasm");
        await ComponentLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_componentsMade)
            {
                var psi = new ProcessStartInfo("make")
                {
                    RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
                    WorkingDirectory = RepositoryLayout.RepoRoot,
                };
                string[] makeArgs = ["--no-print-directory", $"OUT={RepositoryLayout.OutDir}", "components"];
                foreach (var arg in makeArgs)
                {
                    psi.ArgumentList.Add(arg);
                }
                using var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start make");
                var stderr = process.StandardError.ReadToEndAsync();
                var stdout = process.StandardOutput.ReadToEndAsync();
                await process.WaitForExitAsync().ConfigureAwait(false);
                if (process.ExitCode != 0)
                {
                    throw new InvalidOperationException(
                        $"make components failed (exit {process.ExitCode}): {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
                }
                _componentsMade = true;
            }
        }
        finally
        {
            ComponentLock.Release();
        }
        return File.Exists(output) ? output : throw new InvalidOperationException($"make components built no {output}");
    }

    private static readonly SemaphoreSlim ComponentLock = new(1, 1);
    private static bool _componentsMade;

    private static Task<TestImage> Once(string fileStem, Func<Task<ImageDefinition>> define) =>
        Built.GetOrAdd(fileStem, stem => new Lazy<Task<TestImage>>(async () => Build(stem, await define().ConfigureAwait(false)))).Value;

    private static readonly SemaphoreSlim CompileLock = new(1, 1);

    private static async Task<string> EnsureBuiltAsync(string output, string source, string compiler, Func<string, string[]> args)
    {
        // Test classes run in parallel and several need the same binary: compile once, and into a temporary file
        // renamed into place, so another process never sees a half-written one.
        await CompileLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (File.Exists(output) && File.GetLastWriteTimeUtc(output) >= File.GetLastWriteTimeUtc(source))
            {
                return output;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            var partial = $"{output}.{Environment.ProcessId}.partial";
            var psi = new ProcessStartInfo(compiler) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in args(source))
            {
                psi.ArgumentList.Add(arg == output ? partial : arg);
            }
            using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {compiler}");
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync().ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                File.Delete(partial);
                throw new InvalidOperationException(
                    $"{compiler} failed building {output} from {source} (exit {process.ExitCode}): {await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
            }
            File.Move(partial, output, overwrite: true);
            return output;
        }
        finally
        {
            CompileLock.Release();
        }
    }
}
