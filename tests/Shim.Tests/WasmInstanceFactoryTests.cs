using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Containerd.Testing;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The process model without containerd: the factory spawns the installed shim in its instance role through the
/// kit's reaper, with a bundle prepared here, and the test reads the container's stdout/stderr files.
/// </summary>
[Trait("Category", "Integration")]
public sealed class WasmInstanceFactoryTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _bundle = Directory.CreateTempSubdirectory("wasm-bundle-").FullName;
    private WasmInstanceFactory<UnusedEngine> _factory = null!;

    private string Rootfs => Path.Combine(_bundle, "rootfs");

    static WasmInstanceFactoryTests()
    {
        // Instance processes inherit this process's environment: keep them off the host's compilation cache.
        Environment.SetEnvironmentVariable("CONTAINERD_SHIM_WASMTIME_CACHE", "off");
    }

    public async Task InitializeAsync()
    {
        _factory = new WasmInstanceFactory<UnusedEngine>(await ShimBinary.PathAsync());
        Directory.CreateDirectory(Rootfs);
        File.Copy(await TestImages.EnsureDemoWasmAsync(), Path.Combine(Rootfs, "app.wasm"));
        File.WriteAllText(Path.Combine(Rootfs, "trap.wat"), TestModules.Trap);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_bundle, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Program_runs_only_after_start_and_its_exit_code_and_output_come_back()
    {
        var (instance, stdout, stderr) = await CreateAsync("/app.wasm", "echo", "hello");
        try
        {
            Assert.True(instance.Pid > 0);
            await Task.Delay(300);
            Assert.Equal("", File.ReadAllText(stdout));
            await instance.StartAsync(CancellationToken.None);
            var status = await instance.WaitAsync(CancellationToken.None).WaitAsync(Timeout);
            Assert.Equal(0, status.ExitCode);
            Assert.Equal("hello\n", File.ReadAllText(stdout));
            Assert.Equal("exiting\n", File.ReadAllText(stderr));
        }
        finally
        {
            await instance.DeleteAsync();
        }
    }

    [Fact]
    public async Task Exit_code_and_trap_are_the_process_exit_status()
    {
        var (exit, _, _) = await CreateAsync("/app.wasm", "exit", "42");
        await exit.StartAsync(CancellationToken.None);
        Assert.Equal(42, (await exit.WaitAsync(CancellationToken.None).WaitAsync(Timeout)).ExitCode);
        await exit.DeleteAsync();

        var (trap, _, stderr) = await CreateAsync("/trap.wat");
        await trap.StartAsync(CancellationToken.None);
        Assert.Equal(ExitCodes.Trap, (await trap.WaitAsync(CancellationToken.None).WaitAsync(Timeout)).ExitCode);
        Assert.Contains("unreachable", File.ReadAllText(stderr));
        await trap.DeleteAsync();
    }

    [Fact]
    public async Task Kill_reports_128_plus_signal()
    {
        var (instance, _, _) = await CreateAsync("/app.wasm", "daemon");
        await instance.StartAsync(CancellationToken.None);
        instance.Kill(9);
        Assert.Equal(137, (await instance.WaitAsync(CancellationToken.None).WaitAsync(Timeout)).ExitCode);
        await instance.DeleteAsync();
        await instance.DeleteAsync();
        Assert.False(Directory.Exists($"/proc/{instance.Pid}/fd"));
    }

    [Fact]
    public async Task Delete_before_start_reaps_the_waiting_process()
    {
        var (instance, stdout, _) = await CreateAsync("/app.wasm", "echo", "never");
        await instance.DeleteAsync();
        Assert.Equal("", File.ReadAllText(stdout));
        Assert.False(Directory.Exists($"/proc/{instance.Pid}/fd"));
    }

    [Theory]
    [InlineData("/missing.wasm", StatusCode.NotFound, "no such file")]
    [InlineData("/../../etc/hostname", StatusCode.InvalidArgument, "escapes the rootfs")]
    [InlineData("/app.wasm#nope", StatusCode.InvalidArgument, "does not export a function named \"nope\"")]
    public async Task Bad_entrypoint_fails_create_with_the_path_and_reason(string arg0, StatusCode code, string reason)
    {
        var e = await Assert.ThrowsAnyAsync<ShimException>(() => CreateAsync(arg0));
        Assert.Equal(code, e.Code);
        Assert.Contains(arg0.Split('#')[0], e.Message);
        Assert.Contains(reason, e.Message);
    }

    private async Task<(IInstance Instance, string Stdout, string Stderr)> CreateAsync(params string[] args)
    {
        var id = "f" + Guid.NewGuid().ToString("N")[..8];
        var config = Path.Combine(_bundle, "config.json");
        File.WriteAllText(config, TestModules.ConfigJson(args, ["PATH=/bin"]));
        var stdout = Path.Combine(_bundle, id + ".out");
        var stderr = Path.Combine(_bundle, id + ".err");
        var instance = await _factory.CreateAsync(new InstanceConfig
        {
            Id = id,
            Namespace = "test",
            Bundle = _bundle,
            Rootfs = Rootfs,
            Spec = Spec.Load(config),
            Stdout = File.OpenHandle(stdout, FileMode.Create, FileAccess.Write),
            Stderr = File.OpenHandle(stderr, FileMode.Create, FileAccess.Write),
            ContainerdAddress = "/dev/null",
            TtrpcAddress = "/dev/null",
        }, CancellationToken.None).WaitAsync(Timeout);
        return (instance, stdout, stderr);
    }

    /// <summary>The factory never runs the engine itself; the instance process (the shim binary) does.</summary>
    public sealed class UnusedEngine : IEngine
    {
        public string Name => "unused";

        public void CanHandle(RuntimeContext ctx) => throw new NotSupportedException();

        public int RunWasi(RuntimeContext ctx, Stdio stdio) => throw new NotSupportedException();
    }
}
