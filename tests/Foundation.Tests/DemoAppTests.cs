using Containerd.Testing;
using Wasmtime;
using Xunit;

namespace Foundation.Tests;

/// <summary>Runs the real wasi-demo-app module under Wasmtime and checks each command's output and exit code.</summary>
public sealed class DemoAppTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("demo-app-").FullName;

    [Fact]
    public async Task EchoPrintsArgsJoinedBySpacesAndExitingOnStderr()
    {
        var run = await RunAsync("echo", "hello", "wasi  world");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("hello wasi  world\n", run.Stdout);
        Assert.Equal("exiting\n", run.Stderr);
    }

    [Fact]
    public async Task ExitReturnsTheCode()
    {
        var run = await RunAsync("exit", "42");

        Assert.Equal(42, run.ExitCode);
        Assert.Equal("exiting\n", run.Stderr);
    }

    [Fact]
    public async Task WriteWritesTheContentToTheFile()
    {
        var run = await RunAsync("write", "/data/out.txt", "some", "content");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("some content", await File.ReadAllTextAsync(Path.Combine(_dir, "data", "out.txt")));
        Assert.Equal("exiting\n", run.Stderr);
    }

    [Fact]
    public async Task CatPrintsTheFileAndLsItsFolder()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "data"));
        await File.WriteAllTextAsync(Path.Combine(_dir, "data", "hosts"), "127.0.0.1 localhost\n");

        var cat = await RunAsync("cat", "/data/hosts");
        Assert.Equal(0, cat.ExitCode);
        Assert.Equal("127.0.0.1 localhost\n", cat.Stdout);

        var ls = await RunAsync("ls", "/data");
        Assert.Equal(0, ls.ExitCode);
        Assert.Equal("hosts\n", ls.Stdout);

        var missing = await RunAsync("cat", "/data/nope");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("cat: cannot open /data/nope", missing.Stderr);
    }

    [Fact]
    public async Task SleepAcceptsFractionsAndTakesAboutThatLong()
    {
        var started = DateTime.UtcNow;
        var run = await RunAsync("sleep", "0.3");

        Assert.Equal(0, run.ExitCode);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(290), TimeSpan.FromSeconds(20));
        Assert.Equal("exiting\n", run.Stderr);
    }

    [Fact]
    public async Task UnknownCommandFailsWithMessage()
    {
        var run = await RunAsync("frobnicate");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("unknown command", run.Stderr);
        Assert.EndsWith("exiting\n", run.Stderr);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task DaemonIsTheDefaultAndSingsUntilStopped()
    {
        var run = await RunAsync(stopAfter: TimeSpan.FromSeconds(2.5), args: []);

        Assert.Null(run.ExitCode);
        Assert.StartsWith("This is the song that never ends,\nit goes on and on, my friends.\n", run.Stdout);
        Assert.Equal("", run.Stderr);
    }

    [Fact]
    public async Task HelloExportIsACustomEntrypoint()
    {
        var run = await RunAsync(entrypoint: "hello", args: []);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("hello from custom entrypoint\n", run.Stdout);
        Assert.Equal("", run.Stderr);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Task<Run> RunAsync(params string[] args) => RunAsync(entrypoint: "_start", stopAfter: null, args: args);

    /// <summary>Runs the module with stdout/stderr in files; a null exit code means it was stopped by the deadline.</summary>
    private async Task<Run> RunAsync(string entrypoint = "_start", TimeSpan? stopAfter = null, params string[] args)
    {
        var wasm = await TestImages.EnsureDemoWasmAsync();
        var stdout = Path.Combine(_dir, "stdout");
        var stderr = Path.Combine(_dir, "stderr");
        Directory.CreateDirectory(Path.Combine(_dir, "data"));

        using var config = new Config().WithEpochInterruption(stopAfter is not null);
        using var engine = new Engine(config);
        using var module = Module.FromFile(engine, wasm);
        using var linker = new Linker(engine);
        using var store = new Store(engine);
        linker.DefineWasi();
        store.SetWasiConfiguration(new WasiConfiguration()
            .WithArgs(["wasi-demo-app.wasm", .. args])
            .WithStandardOutput(stdout)
            .WithStandardError(stderr)
            .WithPreopenedDirectory(Path.Combine(_dir, "data"), "/data", mutable: true));
        using var stopper = stopAfter is { } after ? new Timer(_ => engine.IncrementEpoch(), null, after, Timeout.InfiniteTimeSpan) : null;
        if (stopAfter is not null)
        {
            store.SetEpochDeadline(1);
        }

        int? exitCode;
        try
        {
            var instance = linker.Instantiate(store, module);
            var run = instance.GetAction(entrypoint) ?? throw new InvalidOperationException($"no export {entrypoint}");
            await Task.Run(run);
            exitCode = 0;
        }
        catch (WasmtimeException e) when (e.ExitCode is not null)
        {
            exitCode = e.ExitCode;
        }
        catch (TrapException e) when (stopAfter is not null && e.Type == TrapCode.Interrupt)
        {
            exitCode = null;
        }
        return new Run(exitCode, await File.ReadAllTextAsync(stdout), await File.ReadAllTextAsync(stderr));
    }

    private sealed record Run(int? ExitCode, string Stdout, string Stderr);
}
