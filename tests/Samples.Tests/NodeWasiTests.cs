using System.Diagnostics;
using ImageBuilder;
using Xunit;

namespace Samples.Tests;

/// <summary>
/// The Node.js engine (samples/nodewasi, an instance-level embedding built from the packages) through a private
/// containerd with ctr: the same cases the Wasmtime shim passes for echo, exit codes, args, env and SIGKILL.
/// </summary>
[Collection(NodeWasiCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Category", "Samples")]
public sealed class NodeWasiTests(NodeWasiFixture fx)
{
    private const string Demo = "/wasi-demo-app.wasm";

    [Fact]
    public async Task Echo_prints_hello_on_stdout_and_exiting_on_stderr()
    {
        var result = await fx.RunAsync(KnownImages.DemoName, NodeWasiFixture.NewId("echo"), [Demo, "echo", "hello"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("hello\n", result.Stdout);
        Assert.Contains("exiting", result.Stderr);
    }

    [Fact]
    public async Task Args_reach_the_program_in_order()
    {
        var result = await fx.RunAsync(KnownImages.DemoName, NodeWasiFixture.NewId("args"),
            [Demo, "echo", "one", "two words", "--three"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal("one two words --three\n", result.Stdout);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(42)]
    [InlineData(255)]
    public async Task Exit_code_is_propagated_to_ctr(int code)
    {
        var result = await fx.RunAsync(KnownImages.DemoName, NodeWasiFixture.NewId("exit"), [Demo, "exit", code.ToString()]);
        Assert.Equal(code, result.ExitCode);
    }

    [Fact]
    public async Task Env_from_the_image_and_ctr_reaches_the_program()
    {
        var result = await fx.RunAsync(NodeWasiFixture.EnvImage, NodeWasiFixture.NewId("env"), ["/env.wasm"],
            ["--env", "GREETING=hello from env"]);
        Assert.True(result.Succeeded, result.ToString());
        var env = result.Stdout.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("GREETING=hello from env", env);
        Assert.Contains("PATH=/bin", env);
    }

    [Fact]
    public async Task Missing_module_fails_the_run_naming_it()
    {
        var result = await fx.RunAsync(KnownImages.DemoName, NodeWasiFixture.NewId("missing"), ["/nope.wasm"]);
        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("/nope.wasm", result.Stderr);
    }

    [Fact]
    public async Task Sigkill_of_a_running_container_exits_137_and_leaves_no_process()
    {
        var id = NodeWasiFixture.NewId("kill");
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = fx.RunAsync(KnownImages.DemoName, id, [Demo, "daemon"], ct: cts.Token);
        try
        {
            var pid = await fx.Containerd.WaitForRunningPidAsync(id);
            // The task pid is the node process this engine spawned, running the module (not the shim server).
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            Assert.EndsWith("node", cmdline[0]);
            Assert.EndsWith("nodewasi-runner.js", cmdline[2]);

            await fx.Containerd.RunCtrAsync("task", "kill", "-s", "SIGKILL", id);
            var result = await run;
            Assert.Equal(137, result.ExitCode);
            Assert.False(Directory.Exists($"/proc/{pid}/fd"), $"node process {pid} still exists");
            Assert.DoesNotContain(id, await fx.Containerd.RunCtrAsync("task", "ls"));
        }
        finally
        {
            // On a failed assertion the daemon would run forever: stop it before the next test.
            if (!run.IsCompleted)
            {
                await fx.Containerd.CtrAsync("task", "kill", "-s", "SIGKILL", id);
                await cts.CancelAsync();
            }
        }
    }

    [Fact]
    public async Task After_run_rm_no_node_process_or_task_of_the_container_remains()
    {
        var id = NodeWasiFixture.NewId("clean");
        var result = await fx.RunAsync(KnownImages.DemoName, id, [Demo, "echo", "bye"]);
        Assert.True(result.Succeeded, result.ToString());
        Assert.DoesNotContain(id, await fx.Containerd.RunCtrAsync("task", "ls"));
        // The runner lives in the container's bundle, whose path carries the id: no process may still run it.
        var survivors = Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out _))
            .Select(d =>
            {
                try { return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' '); }
                catch (IOException) { return ""; }
                catch (UnauthorizedAccessException) { return ""; }
            })
            .Where(cmdline => cmdline.Contains("nodewasi-runner.js") && cmdline.Contains(id))
            .ToList();
        Assert.Empty(survivors);
    }
}

/// <summary>
/// The engine-level sample (samples/minimal-engine, Wasmtime behind IEngine, built from the packages): the wasm
/// layer's instance process with the package's native constructor linked in runs it in the container.
/// </summary>
[Collection(NodeWasiCollection.Name)]
[Trait("Category", "Integration")]
[Trait("Category", "Samples")]
public sealed class MinimalEngineTests(NodeWasiFixture fx)
{
    [Fact]
    public async Task Echo_and_exit_code_through_the_minimal_engine()
    {
        var echo = await fx.Containerd.CtrAsync(["run", "--rm", "--runtime", "io.containerd.minimal.v1", KnownImages.DemoName,
            NodeWasiFixture.NewId("minimal"), "/wasi-demo-app.wasm", "echo", "hello"], TimeSpan.FromSeconds(90));
        Assert.True(echo.Succeeded, echo.ToString());
        Assert.Equal("hello\n", echo.Stdout);

        var exit = await fx.Containerd.CtrAsync(["run", "--rm", "--runtime", "io.containerd.minimal.v1", KnownImages.DemoName,
            NodeWasiFixture.NewId("minimal"), "/wasi-demo-app.wasm", "exit", "7"], TimeSpan.FromSeconds(90));
        Assert.Equal(7, exit.ExitCode);
    }
}
