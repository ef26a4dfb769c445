// `make demo`: starts a private containerd with the freshly built shim first on its PATH, runs the demo
// image's `echo hello` and a few seconds of `daemon` as wasm containers, prints what it ran, and tears
// everything down again. It never talks to a system containerd.
using Containerd.Testing;

var shimDir = Environment.GetEnvironmentVariable("SHIM_BIN_DIR") is { Length: > 0 } d
    ? d
    : Path.Combine(RepositoryLayout.OutDir, "bin");
if (!File.Exists(Path.Combine(shimDir, "containerd-shim-wasmtime-v1")))
{
    Console.Error.WriteLine($"demo: {shimDir}/containerd-shim-wasmtime-v1 not found: run `make build` first");
    return 2;
}
var daemonSeconds = int.TryParse(Environment.GetEnvironmentVariable("DEMO_DAEMON_SECONDS"), out var s) ? s : 4;

Step($"starting a private containerd (version line {new ContainerdOptions().Version}) with {shimDir} first on its PATH");
await using var containerd = await ContainerdFixture.StartAsync(new ContainerdOptions { ShimBinDir = shimDir });
Console.WriteLine($"  {containerd.BinaryVersion}");
Console.WriteLine($"  socket {containerd.Address}, namespace {containerd.Namespace}");

var image = await TestImages.BuildDemoAsync();
Step($"importing {image.Name} from {image.TarPath}");
await containerd.ImportAsync(image.TarPath);

const string runtime = "io.containerd.wasmtime.v1";
var exitCode = 0;

Step($"ctr run --rm --runtime={runtime} {image.Name} demo-echo /wasi-demo-app.wasm echo hello");
var echo = await containerd.CtrAsync("run", "--rm", $"--runtime={runtime}", image.Name, "demo-echo", "/wasi-demo-app.wasm", "echo", "hello");
Print(echo);
if (!echo.Succeeded || !echo.Stdout.Contains("hello", StringComparison.Ordinal))
{
    exitCode = 1;
}

Step($"ctr run -d --runtime={runtime} {image.Name} demo-daemon /wasi-demo-app.wasm daemon  (for {daemonSeconds}s, output in a log file)");
var logFile = Path.Combine(containerd.WorkDir, "demo-daemon.log");
await containerd.RunCtrAsync("run", "-d", $"--log-uri=file://{logFile}", $"--runtime={runtime}", image.Name, "demo-daemon", "/wasi-demo-app.wasm", "daemon");
await Task.Delay(TimeSpan.FromSeconds(daemonSeconds));
Console.WriteLine((await containerd.RunCtrAsync("task", "ls")).TrimEnd());
await containerd.RunCtrAsync("task", "kill", "--signal", "SIGKILL", "demo-daemon");
await containerd.CtrAsync(new[] { "task", "wait", "demo-daemon" }, TimeSpan.FromSeconds(30));
var song = File.Exists(logFile) ? await File.ReadAllTextAsync(logFile) : "";
Console.WriteLine(song.TrimEnd());
await containerd.RunCtrAsync("task", "delete", "demo-daemon");
await containerd.RunCtrAsync("container", "delete", "demo-daemon");
if (!song.Contains("never ends", StringComparison.Ordinal))
{
    Console.Error.WriteLine("demo: the daemon printed no verse");
    exitCode = 1;
}

Step("stopping containerd and removing everything it created");
await containerd.DisposeAsync();
var leftovers = containerd.FindLeftovers();
if (!leftovers.IsEmpty)
{
    Console.Error.WriteLine("demo: left behind:\n" + leftovers);
    exitCode = 1;
}
Console.WriteLine(exitCode == 0 ? "demo: done, nothing left behind" : "demo: FAILED");
return exitCode;

static void Step(string what) => Console.WriteLine($"==> {what}");

static void Print(ProcessResult r)
{
    foreach (var line in r.Stdout.TrimEnd().Split('\n'))
    {
        Console.WriteLine($"  stdout| {line}");
    }
    foreach (var line in r.Stderr.TrimEnd().Split('\n').Where(l => l.Length > 0))
    {
        Console.WriteLine($"  stderr| {line}");
    }
    Console.WriteLine($"  exit code {r.ExitCode}");
}
