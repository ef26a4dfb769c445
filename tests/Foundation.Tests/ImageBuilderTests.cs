using System.Diagnostics;
using System.Formats.Tar;
using System.Text.Json;
using Containerd.Testing;
using ImageBuilder;
using Xunit;

namespace Foundation.Tests;

/// <summary>The image builder's output, read back from the tarball: layout, documents, layer headers, determinism and errors.</summary>
public sealed class ImageBuilderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("image-builder-").FullName;

    [Fact]
    public void SameInputsGiveByteIdenticalTarballs()
    {
        var first = ImageLayoutWriter.Write(KnownImages.Busybox(TestImages.BusyboxBinaryPath), Path.Combine(_dir, "a.tar"));
        var second = ImageLayoutWriter.Write(KnownImages.Busybox(TestImages.BusyboxBinaryPath), Path.Combine(_dir, "b.tar"));

        Assert.Equal(Sha256Of(first.Path), Sha256Of(second.Path));
        Assert.Equal(first.ManifestDigest, second.ManifestDigest);
    }

    [Fact]
    public void HostFileTimestampsDoNotChangeTheOutput()
    {
        var file = Path.Combine(_dir, "app");
        File.WriteAllText(file, "payload");
        var image = new ImageDefinition { Name = "example.com/app:1", Layers = [new FilesystemLayer([LayerEntry.File("app", file)])] };
        var before = ImageLayoutWriter.WriteToArray(image, out _);
        File.SetLastWriteTimeUtc(file, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));

        Assert.Equal(before, ImageLayoutWriter.WriteToArray(image, out _));
    }

    [Fact]
    public void LayoutHasOciLayoutIndexAndEveryBlobUnderItsDigest()
    {
        var built = ImageLayoutWriter.Write(KnownImages.Demo(DemoWasm()), Path.Combine(_dir, "demo.tar"));
        var files = ReadTar(built.Path);

        Assert.Equal("""{"imageLayoutVersion":"1.0.0"}""", Text(files["oci-layout"]));
        foreach (var (name, data) in files.Where(f => f.Key.StartsWith("blobs/sha256/", StringComparison.Ordinal)))
        {
            Assert.Equal("sha256:" + name["blobs/sha256/".Length..], Digest.Sha256(data));
        }
        var index = Json(files["index.json"]);
        var manifest = Assert.Single(index.GetProperty("manifests").EnumerateArray());
        Assert.Equal(built.ManifestDigest, manifest.GetProperty("digest").GetString());
        Assert.Equal(MediaTypes.ImageManifest, manifest.GetProperty("mediaType").GetString());
        Assert.Equal("linux", manifest.GetProperty("platform").GetProperty("os").GetString());
        Assert.Equal("amd64", manifest.GetProperty("platform").GetProperty("architecture").GetString());
        var annotations = manifest.GetProperty("annotations");
        Assert.Equal(KnownImages.DemoName, annotations.GetProperty(Annotations.ContainerdImageName).GetString());
        Assert.Equal("latest", annotations.GetProperty(Annotations.RefName).GetString());
    }

    [Fact]
    public void DemoImageIsARegularImageWithTheModuleAsEntrypoint()
    {
        var built = ImageLayoutWriter.Write(KnownImages.Demo(DemoWasm()), Path.Combine(_dir, "demo.tar"));
        var files = ReadTar(built.Path);

        var config = Json(Blob(files, built.ConfigDigest));
        Assert.Equal("/wasi-demo-app.wasm", Assert.Single(config.GetProperty("config").GetProperty("Entrypoint").EnumerateArray()).GetString());
        var layer = ReadTar(Blob(files, Assert.Single(built.LayerDigests)), out var headers);
        Assert.Equal(File.ReadAllBytes(DemoWasm()), layer["wasi-demo-app.wasm"]);
        Assert.Equal(Modes.Executable, headers["wasi-demo-app.wasm"].Mode);
        var diffId = Assert.Single(config.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray()).GetString();
        Assert.Equal(built.LayerDigests[0], diffId);
    }

    [Fact]
    public void FilesystemLayerIsSortedWithFixedHeadersParentsAndSymlinks()
    {
        var built = ImageLayoutWriter.Write(KnownImages.Busybox(TestImages.BusyboxBinaryPath), Path.Combine(_dir, "bb.tar"));
        var layerBytes = Blob(ReadTar(built.Path), Assert.Single(built.LayerDigests));
        ReadTar(layerBytes, out var headers);

        var names = headers.Keys.ToList();
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.All(headers.Values, h =>
        {
            Assert.Equal(DateTimeOffset.UnixEpoch, h.ModificationTime);
            Assert.Equal(0, h.Uid);
            Assert.Equal(0, h.Gid);
        });
        Assert.Equal(TarEntryType.Directory, headers["bin/"].EntryType);
        Assert.Equal(TarEntryType.SymbolicLink, headers["bin/sh"].EntryType);
        Assert.Equal("busybox", headers["bin/sh"].LinkName);
        Assert.Equal(Modes.Executable, headers["bin/busybox"].Mode);
        Assert.Equal((UnixFileMode)0b1_111_111_111, headers["tmp/"].Mode);
    }

    [Fact]
    public void GzipLayerKeepsTheUncompressedDigestAsDiffId()
    {
        var image = new ImageDefinition
        {
            Name = "example.com/gz:1",
            Layers = [new FilesystemLayer([LayerEntry.Bytes("etc/motd", "hi\n"u8.ToArray())], gzip: true)],
        };
        var built = ImageLayoutWriter.Write(image, Path.Combine(_dir, "gz.tar"));
        var files = ReadTar(built.Path);
        var manifest = Json(Blob(files, built.ManifestDigest));
        var compressed = Blob(files, built.LayerDigests[0]);
        using var gunzip = new System.IO.Compression.GZipStream(new MemoryStream(compressed), System.IO.Compression.CompressionMode.Decompress);
        using var tar = new MemoryStream();
        gunzip.CopyTo(tar);

        Assert.Equal(MediaTypes.LayerGzip, manifest.GetProperty("layers")[0].GetProperty("mediaType").GetString());
        var config = Json(Blob(files, built.ConfigDigest));
        Assert.Equal(Digest.Sha256(tar.ToArray()), config.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString());
    }

    [Fact]
    public void TarLayerCarriesTheCallersTarUnchangedWithItsDigestAsDiffId()
    {
        using var written = new MemoryStream();
        using (var writer = new TarWriter(written, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "../escape") { LinkName = "/etc/passwd" });
        }
        var tar = written.ToArray();
        var fromFile = Path.Combine(_dir, "layer.tar");
        File.WriteAllBytes(fromFile, tar);

        foreach (var layer in new[] { new TarLayer(tar), new TarLayer(fromFile) })
        {
            var built = ImageLayoutWriter.Write(new ImageDefinition { Name = "example.com/raw:1", Layers = [layer] }, Path.Combine(_dir, "raw.tar"));
            var files = ReadTar(built.Path);
            var descriptor = Json(Blob(files, built.ManifestDigest)).GetProperty("layers")[0];
            var config = Json(Blob(files, built.ConfigDigest));

            Assert.Equal(MediaTypes.Layer, descriptor.GetProperty("mediaType").GetString());
            Assert.Equal(tar, Blob(files, descriptor.GetProperty("digest").GetString()!));
            Assert.Equal(Digest.Sha256(tar), config.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString());
        }
        Assert.Throws<InputNotFoundException>(() =>
            ImageLayoutWriter.WriteToArray(new ImageDefinition { Name = "example.com/raw:1", Layers = [new TarLayer(Path.Combine(_dir, "missing.tar"))] }, out _));
    }

    [Fact]
    public void WasmLayerImageCarriesTheModuleAsAComponentLayerWithoutDiffIds()
    {
        var built = ImageLayoutWriter.Write(KnownImages.WasmLayer(DemoWasm()), Path.Combine(_dir, "oci.tar"));
        var files = ReadTar(built.Path);
        var manifest = Json(Blob(files, built.ManifestDigest));
        var config = Json(Blob(files, built.ConfigDigest));

        var layer = Assert.Single(manifest.GetProperty("layers").EnumerateArray());
        Assert.Equal(MediaTypes.WasmComponentLayer, layer.GetProperty("mediaType").GetString());
        Assert.Equal(File.ReadAllBytes(DemoWasm()), Blob(files, layer.GetProperty("digest").GetString()!));
        Assert.Equal(MediaTypes.ImageConfig, manifest.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.Equal("wasip1", config.GetProperty("os").GetString());
        Assert.Equal("wasm", config.GetProperty("architecture").GetString());
        Assert.Empty(config.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray());
    }

    [Fact]
    public void WasmArtifactUsesTheCncfMediaTypes()
    {
        var built = ImageLayoutWriter.Write(KnownImages.WasmArtifact(DemoWasm()), Path.Combine(_dir, "artifact.tar"));
        var files = ReadTar(built.Path);
        var manifest = Json(Blob(files, built.ManifestDigest));
        var config = Json(Blob(files, built.ConfigDigest));

        Assert.Equal(MediaTypes.WasmArtifactConfig, manifest.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.Equal(MediaTypes.WasmArtifactLayer, Assert.Single(manifest.GetProperty("layers").EnumerateArray()).GetProperty("mediaType").GetString());
        Assert.Equal(built.LayerDigests[0], Assert.Single(config.GetProperty("layerDigests").EnumerateArray()).GetString());
        Assert.Equal("wasip1", config.GetProperty("os").GetString());
    }

    [Fact]
    public void MissingInputIsNamedAndNoOutputIsLeft()
    {
        var output = Path.Combine(_dir, "out.tar");
        var missing = Path.Combine(_dir, "no-such.wasm");

        var error = Assert.Throws<InputNotFoundException>(() => ImageLayoutWriter.Write(KnownImages.Demo(missing), output));

        Assert.Equal(missing, error.Path);
        Assert.Contains(missing, error.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public void UnwritableOutputIsNamedAndNothingIsLeft()
    {
        var inMissingDir = Path.Combine(_dir, "missing", "out.tar");
        var isDirectory = Directory.CreateDirectory(Path.Combine(_dir, "a-directory")).FullName;
        var image = KnownImages.Demo(DemoWasm());

        var missingDir = Assert.Throws<OutputNotWritableException>(() => ImageLayoutWriter.Write(image, inMissingDir));
        var directory = Assert.Throws<OutputNotWritableException>(() => ImageLayoutWriter.Write(image, isDirectory));

        Assert.Contains(inMissingDir, missingDir.Message);
        Assert.Contains(isDirectory, directory.Message);
        Assert.Equal([isDirectory], Directory.EnumerateFileSystemEntries(_dir));
        Assert.Empty(Directory.EnumerateFileSystemEntries(isDirectory));
    }

    [Theory]
    [InlineData("755", 0b111_101_101)]
    [InlineData("0644", 0b110_100_100)]
    [InlineData("1777", 0b1_111_111_111)]
    public void OctalModesParse(string text, int expected) => Assert.Equal((UnixFileMode)expected, Modes.ParseOctal(text));

    [Theory]
    [InlineData("")]
    [InlineData("999")]
    [InlineData("17777")]
    [InlineData("rwx")]
    public void BadModesAreRejectedNamingTheText(string text) =>
        Assert.Contains($"'{text}'", Assert.Throws<FormatException>(() => Modes.ParseOctal(text)).Message);

    [Fact]
    public void LayerRejectsDuplicatePathsAndEscapingPaths()
    {
        Assert.Throws<ArgumentException>(() => new FilesystemLayer([LayerEntry.Directory("a"), LayerEntry.Symlink("/a/", "b")]));
        Assert.Throws<ArgumentException>(() => LayerEntry.Directory("a/../../etc"));
        Assert.Throws<ArgumentException>(() => LayerEntry.Directory("/"));
    }

    [Fact]
    public async Task CliReportsAMissingInputOnStderrWithNonZeroExit()
    {
        var output = Path.Combine(_dir, "out.tar");
        var missing = Path.Combine(_dir, "nope.wasm");

        var run = await RunCliAsync("demo", "--wasm", missing, "--output", output);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(missing, run.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task CliReportsAnUnwritableOutputOnStderrWithNonZeroExit()
    {
        var output = Path.Combine(_dir, "missing-dir", "out.tar");

        var run = await RunCliAsync("demo", "--wasm", DemoWasm(), "--output", output);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(output, run.Stderr);
    }

    [Fact]
    public async Task CliBuildWritesTheSameBytesAsTheLibrary()
    {
        var output = Path.Combine(_dir, "cli.tar");

        var run = await RunCliAsync("build", "--name", KnownImages.DemoWasmLayerName, "--platform", "wasip1/wasm",
            "--layer", $"{MediaTypes.WasmComponentLayer}={DemoWasm()}=wasi-demo-oci.wasm", "--entrypoint", "wasi-demo-oci.wasm",
            "--label", "containerd.runwasi.layers=" + Digest.Hex(Digest.Sha256(File.ReadAllBytes(DemoWasm()))),
            "--output", output);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(ImageLayoutWriter.WriteToArray(KnownImages.WasmLayer(DemoWasm()), out _), File.ReadAllBytes(output));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string DemoWasm() => TestImages.EnsureDemoWasmAsync().GetAwaiter().GetResult();

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunCliAsync(params string[] args)
    {
        // The builder project is referenced, so its assembly sits beside the tests.
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "oci-image-builder.dll"));
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string Sha256Of(string path) => Digest.Sha256(File.ReadAllBytes(path));

    private static byte[] Blob(Dictionary<string, byte[]> files, string digest) => files["blobs/sha256/" + Digest.Hex(digest)];

    private static JsonElement Json(byte[] data) => JsonDocument.Parse(data).RootElement;

    private static string Text(byte[] data) => System.Text.Encoding.UTF8.GetString(data);

    private static Dictionary<string, byte[]> ReadTar(string path) => ReadTar(File.ReadAllBytes(path), out _);

    private static Dictionary<string, byte[]> ReadTar(byte[] tar, out Dictionary<string, TarEntry> headers)
    {
        var files = new Dictionary<string, byte[]>();
        headers = [];
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry(copyData: true) is { } entry)
        {
            headers[entry.Name] = entry;
            if (entry.DataStream is { } data)
            {
                using var buffer = new MemoryStream();
                data.CopyTo(buffer);
                files[entry.Name] = buffer.ToArray();
            }
        }
        return files;
    }
}
