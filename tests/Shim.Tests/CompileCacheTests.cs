using Containerd.Shim.Wasm;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The wasm layer's compile sequence on a real cache folder, driven by a counting compiler (the one class under test
/// is <see cref="CompileCache"/>; real engines go through it in the Precompile and shared-mode tests): a miss compiles
/// and stores, a hit loads without compiling, a refused artifact is discarded and replaced, and every real
/// compilation is one line of the compile log.
/// </summary>
public sealed class CompileCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("compile-cache-").FullName;
    // An engine name of this test's own, so its variables touch no other test's settings.
    private readonly string _engine = "cc" + Guid.NewGuid().ToString("N")[..8];

    public CompileCacheTests()
    {
        Environment.SetEnvironmentVariable(CompileCache.DirectoryVariable(_engine), Path.Combine(_root, "cache"));
        Environment.SetEnvironmentVariable(CompileCache.CompileLogVariable(_engine), Path.Combine(_root, "compile.log"));
    }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(CompileCache.DirectoryVariable(_engine), null);
        Environment.SetEnvironmentVariable(CompileCache.CompileLogVariable(_engine), null);
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void A_miss_compiles_and_stores_and_the_next_container_loads_without_compiling()
    {
        var compiler = new CountingCompiler(new ArtifactKey(_engine, "0123456789abcdef"));
        var source = new ProgramSource("demo.wasm", "module bytes"u8.ToArray(), ModuleFormat.Binary);

        var first = CompileCache.FromEnvironment(_engine).GetOrCompile(compiler, source);
        var second = CompileCache.FromEnvironment(_engine).GetOrCompile(compiler, source);

        Assert.Equal("compiled:module bytes", first);
        Assert.Equal("loaded:compiled:module bytes", second);
        Assert.Equal(1, compiler.Compilations);
        var line = Assert.Single(CompileLog());
        Assert.Contains($" {source.Digest} 0123456789abcdef demo.wasm not cached", line);
    }

    [Fact]
    public void A_refused_artifact_is_discarded_compiled_again_and_replaced()
    {
        var key = new ArtifactKey(_engine, "0123456789abcdef");
        var source = new ProgramSource("demo.wasm", "module bytes"u8.ToArray(), ModuleFormat.Binary);
        CompileCache.FromEnvironment(_engine).GetOrCompile(new CountingCompiler(key), source);

        var refusing = new CountingCompiler(key) { Refusal = "built for another CPU" };
        var again = CompileCache.FromEnvironment(_engine).GetOrCompile(refusing, source);

        Assert.Equal("compiled:module bytes", again);
        Assert.Equal(1, refusing.Compilations);
        Assert.Contains($"{_engine} refused sha256:", CompileLog()[1]);
        Assert.Contains("built for another CPU", CompileLog()[1]);
        // The refused file went, the new artifact took its place: one entry.
        Assert.Single(Directory.EnumerateFiles(Path.Combine(_root, "cache"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void Another_key_or_module_misses()
    {
        var source = new ProgramSource("demo.wasm", "module bytes"u8.ToArray(), ModuleFormat.Binary);
        CompileCache.FromEnvironment(_engine).GetOrCompile(new CountingCompiler(new ArtifactKey(_engine, "0123456789abcdef")), source);

        var otherHash = new CountingCompiler(new ArtifactKey(_engine, "fedcba9876543210"));
        CompileCache.FromEnvironment(_engine).GetOrCompile(otherHash, source);
        var otherModule = new CountingCompiler(new ArtifactKey(_engine, "0123456789abcdef"));
        CompileCache.FromEnvironment(_engine).GetOrCompile(otherModule, new ProgramSource("demo.wasm", "other bytes"u8.ToArray(), ModuleFormat.Binary));

        Assert.Equal(1, otherHash.Compilations);
        Assert.Equal(1, otherModule.Compilations);
    }

    [Fact]
    public void Off_compiles_every_time_and_says_so_in_the_log()
    {
        Environment.SetEnvironmentVariable(CompileCache.DirectoryVariable(_engine), "off");
        var compiler = new CountingCompiler(new ArtifactKey(_engine, "0123456789abcdef"));
        var source = new ProgramSource("demo.wasm", "module bytes"u8.ToArray(), ModuleFormat.Binary);

        CompileCache.FromEnvironment(_engine).GetOrCompile(compiler, source);
        CompileCache.FromEnvironment(_engine).GetOrCompile(compiler, source);

        Assert.Equal(2, compiler.Compilations);
        Assert.All(CompileLog(), line => Assert.EndsWith("cache off", line));
    }

    [Fact]
    public void Settings_are_named_by_the_engine()
    {
        Assert.Equal("CONTAINERD_SHIM_WASMEDGE_CACHE", CompileCache.DirectoryVariable("wasmedge"));
        Assert.Equal("CONTAINERD_SHIM_WASMTIME_CACHE_SIZE", CompileCache.SizeVariable("wasmtime"));
        Assert.Equal("/var/cache/containerd-shim-wasmedge", CompileCache.DefaultDirectory("wasmedge"));
        Environment.SetEnvironmentVariable(CompileCache.SizeVariable(_engine), "lots");
        try
        {
            var e = Assert.Throws<Containerd.Shimkit.ShimException>(() => CompileCache.FromEnvironment(_engine));
            Assert.Contains($"{CompileCache.SizeVariable(_engine)}=lots", e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(CompileCache.SizeVariable(_engine), null);
        }
    }

    private string[] CompileLog() => File.ReadAllLines(Path.Combine(_root, "compile.log"));

    // Compiles a module to "compiled:<bytes>" and loads an artifact as "loaded:<artifact>", refusing every artifact
    // when Refusal is set.
    private sealed class CountingCompiler(ArtifactKey key) : IProgramCompiler<string>
    {
        public int Compilations { get; private set; }

        public string? Refusal { get; init; }

        public ArtifactKey Key => key;

        public string Compile(ProgramSource source)
        {
            Compilations++;
            return "compiled:" + System.Text.Encoding.UTF8.GetString(source.Bytes.Span);
        }

        public byte[] Serialize(string program) => System.Text.Encoding.UTF8.GetBytes(program);

        public string? Load(ProgramSource source, CompiledArtifact artifact, out string? refusal)
        {
            refusal = Refusal;
            return Refusal is null ? "loaded:" + File.ReadAllText(artifact.Path!) : null;
        }
    }
}
