using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace Stress;

/// <summary>The stress command line, callable in-process (tests) as well as from <c>Main</c>.</summary>
public static class StressTool
{
    /// <summary>Parses <paramref name="args"/>, runs the tasks, prints the report; returns the exit code.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="stdout">Where the report and plain progress go.</param>
    /// <param name="stderr">Where errors go.</param>
    /// <param name="interactive">Show a live progress bar (stdout is a terminal) instead of plain lines.</param>
    /// <param name="cancellationToken">Interrupts the run (Ctrl-C); created resources are still removed.</param>
    /// <returns>0 when every task succeeded, 1 when some failed or the run was interrupted, 2 when it could not run.</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, bool interactive, CancellationToken cancellationToken = default)
    {
        var address = new Option<string>("--address", "-a") { Description = "containerd's gRPC socket", DefaultValueFactory = _ => "/run/containerd/containerd.sock" };
        var ns = new Option<string>("--namespace", "-n") { Description = "containerd namespace", DefaultValueFactory = _ => "default" };
        var runtime = new Option<string>("--runtime") { Description = "runtime (shim) name", DefaultValueFactory = _ => "io.containerd.wasmtime.v1" };
        var image = new Option<string>("--image") { Description = "image to run (already imported and unpacked)", DefaultValueFactory = _ => "ghcr.io/containerd/runwasi/wasi-demo-app:latest" };
        var snapshotter = new Option<string>("--snapshotter") { Description = "snapshotter the image is unpacked into", DefaultValueFactory = _ => "overlayfs" };
        var mode = new Option<StressMode>("--mode") { Description = "containerd: through containerd's API; shim: the shim binary alone", DefaultValueFactory = _ => StressMode.Containerd };
        var shim = new Option<string?>("--shim") { Description = "shim mode: the shim executable" };
        var rootfs = new Option<string?>("--rootfs") { Description = "shim mode: root filesystem folder (holding the module)" };
        var count = new Option<int>("--count") { Description = "number of tasks", DefaultValueFactory = _ => 10 };
        var parallel = new Option<int>("--parallel") { Description = "tasks in flight at once (0 = all)", DefaultValueFactory = _ => 1 };
        var timeout = new Option<double>("--timeout") { Description = "seconds one task may take", DefaultValueFactory = _ => 30 };
        var json = new Option<string?>("--json-output") { Description = "write results in benchmark-action JSON to this file" };
        var name = new Option<string?>("--name") { Description = "benchmark name prefix in the JSON output" };
        var processArgs = new Argument<string[]>("args") { Description = "process arguments after --; default: the image's entrypoint and cmd", Arity = ArgumentArity.ZeroOrMore };
        var root = new RootCommand("Runs N tasks Create → Start → Wait → Delete through containerd or a shim and reports throughput and latency.")
        {
            address, ns, runtime, image, snapshotter, mode, shim, rootfs, count, parallel, timeout, json, name, processArgs,
        };
        root.SetAction(async (result, token) =>
        {
            var options = new StressOptions
            {
                Mode = result.GetValue(mode),
                ShimPath = result.GetValue(shim),
                Rootfs = result.GetValue(rootfs),
                Address = result.GetValue(address)!,
                Namespace = result.GetValue(ns)!,
                Runtime = result.GetValue(runtime)!,
                Image = result.GetValue(image)!,
                Snapshotter = result.GetValue(snapshotter)!,
                Args = result.GetValue(processArgs) ?? [],
                Count = result.GetValue(count),
                Parallel = result.GetValue(parallel),
                Timeout = TimeSpan.FromSeconds(result.GetValue(timeout)),
                JsonOutput = result.GetValue(json),
                BenchmarkName = result.GetValue(name),
            };
            return await RunAsync(options, stdout, stderr, interactive, token);
        });
        var parsed = root.Parse(args);
        // The caller owns Ctrl-C: System.CommandLine's own handler would end the process before cleanup finishes.
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = null };
        return await parsed.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>Runs with already-parsed options; see <see cref="RunAsync(string[], TextWriter, TextWriter, bool, CancellationToken)"/>.</summary>
    public static async Task<int> RunAsync(StressOptions options, TextWriter stdout, TextWriter stderr, bool interactive, CancellationToken cancellationToken)
    {
        if (options.Count <= 0 || options.Parallel < 0 || options.Timeout <= TimeSpan.Zero)
        {
            await stderr.WriteLineAsync("stress: --count and --timeout must be positive, --parallel zero or positive");
            return 2;
        }
        var target = options.Mode == StressMode.Shim
            ? $"shim {options.ShimPath}, rootfs {options.Rootfs}, mock events endpoint"
            : $"runtime {options.Runtime}, image {options.Image}, containerd {options.Address} ({options.Namespace})";
        await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"stress: {options.Count} tasks, parallel {(options.Parallel == 0 ? "unlimited" : options.Parallel)}, {target}"));
        StressReport report;
        try
        {
            report = interactive
                ? await RunWithProgressBarAsync(options, cancellationToken)
                : await RunWithProgressLinesAsync(options, stdout, cancellationToken);
        }
        catch (StressException e)
        {
            await stderr.WriteLineAsync($"stress: {e.Message}");
            return 2;
        }
        report.WriteText(stdout);
        if (options.JsonOutput is { } path)
        {
            await File.WriteAllTextAsync(path, report.ToBenchmarkJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }), CancellationToken.None);
        }
        if (cancellationToken.IsCancellationRequested)
        {
            await stderr.WriteLineAsync("stress: interrupted; every task, shim, container and snapshot it created was removed");
        }
        return report.Failed == 0 && !cancellationToken.IsCancellationRequested ? 0 : 1;
    }

    private static Task<StressReport> RunWithProgressBarAsync(StressOptions options, CancellationToken cancellationToken) =>
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask("tasks", maxValue: options.Count);
                var failed = 0;
                return await StressRunner.RunAsync(options, outcome =>
                {
                    if (!outcome.Succeeded)
                    {
                        bar.Description = $"tasks ({Interlocked.Increment(ref failed)} failed)";
                    }
                    bar.Increment(1);
                }, cancellationToken);
            });

    private static Task<StressReport> RunWithProgressLinesAsync(StressOptions options, TextWriter stdout, CancellationToken cancellationToken)
    {
        var step = Math.Max(1, options.Count / 10);
        var done = 0;
        var failed = 0;
        var gate = new object();
        return StressRunner.RunAsync(options, outcome =>
        {
            lock (gate)
            {
                done++;
                failed += outcome.Succeeded ? 0 : 1;
                if (done % step == 0 || done == options.Count)
                {
                    stdout.WriteLine($"progress: {done}/{options.Count} done, {failed} failed");
                }
            }
        }, cancellationToken);
    }
}
