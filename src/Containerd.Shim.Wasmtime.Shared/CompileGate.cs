using System.Diagnostics;
using System.Globalization;
using Containerd.Shimkit;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// Bounds how many compilations the daemon runs at once, so one tenant's huge module takes a slot (and, with
/// parallel compilation off, one core) instead of every core while every other tenant's Create waits. Only compiles
/// pass through it: a program already in memory or in the artifact folder never queues behind one.
/// </summary>
internal sealed class CompileGate(int workers)
{
    /// <summary>How many compilations the daemon runs at once (default half the processors, at least one).</summary>
    public const string WorkersVariable = "CONTAINERD_WASMTIMED_COMPILE_WORKERS";

    private readonly SemaphoreSlim _slots = new(workers, workers);
    private int _waiting;

    /// <summary>The slots.</summary>
    public int Workers { get; } = workers;

    /// <summary>Compilations waiting for a slot now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Compilations running now.</summary>
    public int Running => Workers - _slots.CurrentCount;

    /// <summary>The gate <see cref="WorkersVariable"/> asks for; an unparsable or non-positive value is refused by
    /// name, so a typo does not silently leave the default.</summary>
    public static CompileGate FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(WorkersVariable);
        if (string.IsNullOrEmpty(text))
        {
            return new CompileGate(Math.Max(1, Environment.ProcessorCount / 2));
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
        {
            throw new InvalidOperationException($"{WorkersVariable}={UntrustedText.Excerpt(text)}: expected a positive whole number");
        }
        return new CompileGate(n);
    }

    /// <summary>Runs <paramref name="compile"/> in a slot, waiting for one until <paramref name="ct"/> (the Create's
    /// deadline) is cancelled.</summary>
    public T Run<T>(string name, CancellationToken ct, Func<T> compile)
    {
        if (!_slots.Wait(0))
        {
            Interlocked.Increment(ref _waiting);
            var watch = Stopwatch.StartNew();
            ShimLog.Info($"compile of {UntrustedText.Excerpt(name)} waits for a compile slot ({Workers} busy, {Waiting} waiting)");
            try
            {
                _slots.Wait(ct);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
            ShimLog.Info($"compile of {UntrustedText.Excerpt(name)} got a slot after {watch.ElapsedMilliseconds} ms");
        }
        try
        {
            ShimLog.Debug($"compiling {UntrustedText.Excerpt(name)}");
            return compile();
        }
        finally
        {
            _slots.Release();
        }
    }
}
