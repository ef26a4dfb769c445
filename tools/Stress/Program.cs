using System.Runtime.InteropServices;
using Stress;

using var interrupted = new CancellationTokenSource();
// Ctrl-C and SIGTERM stop the run instead of the process, so every task's cleanup still runs.
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    interrupted.Cancel();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    interrupted.Cancel();
});
return await StressTool.RunAsync(args, Console.Out, Console.Error, interactive: !Console.IsOutputRedirected, interrupted.Token);
