using System.Net;
using System.Runtime.InteropServices;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// Runs a wasi:http/proxy component as a container's program: listens on the address the container's environment
/// names (<see cref="WasiHttpServer.AddressVariable"/>, default <see cref="WasiHttpServer.DefaultAddress"/>) in the
/// instance process, which already lives in the container's network namespace, until a signal ends it. SIGINT
/// stops accepting, lets requests in flight finish (for <see cref="HttpServerLimits.DrainTimeout"/>) and exits 0; a second signal, or SIGTERM, exits 128+signal at
/// once, as runwasi's wasmtime shim does.
/// </summary>
public static class HttpProxyRunner
{
    /// <summary>How long SIGINT waits for requests in flight unless CONTAINERD_SHIM_WASMTIME_HTTP_DRAIN_TIMEOUT says.</summary>
    public static readonly TimeSpan DrainTimeout = HttpServerLimits.Default.DrainTimeout;

    private const int SigInt = 2, SigTerm = 15;

    /// <summary>
    /// Serves until SIGINT/SIGTERM and returns the exit status. <paramref name="component"/> is wasm bytes, or an
    /// artifact compiled by <see cref="WasiHttpServer.Precompile"/> when <paramref name="precompiled"/>.
    /// </summary>
    public static int Run(ReadOnlyMemory<byte> component, bool precompiled, IEnumerable<(string Name, string Value)> env, string name)
    {
        ProxyHost host;
        try
        {
            host = ProxyHost.Load(component.Span, precompiled);
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"wasmtime: {name}: {e.Message}");
            return 1;
        }
        return Run(host, env, name);
    }

    /// <summary>Serves a loaded component (which this call owns and disposes) until SIGINT/SIGTERM.</summary>
    internal static int Run(ProxyHost host, IEnumerable<(string Name, string Value)> env, string name)
    {
        IPEndPoint endpoint;
        HttpServerLimits limits;
        try
        {
            endpoint = WasiHttpServer.ParseAddress(env.LastOrDefault(e => e.Name == WasiHttpServer.AddressVariable).Value);
            limits = HttpServerLimits.FromEnvironment();
        }
        catch (Exception e) when (e is FormatException or Containerd.Shimkit.ShimException)
        {
            host.Dispose();
            Console.Error.WriteLine($"wasmtime: {name}: {e.Message}");
            return 1;
        }

        var stop = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var interrupts = 0;
        void OnSignal(PosixSignalContext context)
        {
            // The runtime's own handling (exit at once) is replaced: the first SIGINT drains.
            context.Cancel = true;
            if (context.Signal == PosixSignal.SIGINT && Interlocked.Increment(ref interrupts) == 1)
            {
                stop.TrySetResult(0);
                return;
            }
            var signal = context.Signal == PosixSignal.SIGINT ? SigInt : SigTerm;
            Console.Out.Flush();
            Environment.Exit(128 + signal);
        }
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        WasiHttpServer server;
        try
        {
            server = WasiHttpServer.StartAsync(host, endpoint, limits).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            Console.Error.WriteLine($"wasmtime: {name}: cannot serve on {endpoint}: {e.Message}");
            return 1;
        }
        Console.Error.WriteLine($"wasmtime: {name}: serving wasi:http on {string.Join(", ", server.Addresses)}");
        var status = stop.Task.GetAwaiter().GetResult();
        try
        {
            server.StopAsync(limits.DrainTimeout).GetAwaiter().GetResult();
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return status;
    }
}
