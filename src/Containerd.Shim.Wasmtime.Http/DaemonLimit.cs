using System.Globalization;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// A cap the shared-mode daemon enforces across all its tenants, on something each container takes its own share of:
/// guest threads (<see cref="GuestThreadsVariable"/>: a command holds one from Create until its guest's thread has
/// returned, a wasi:http request one while its guest runs) or the wasi:http servers' open connections
/// (<see cref="ConnectionsVariable"/>: each one a descriptor and a connection's buffers). Past it a Create is refused,
/// a request answered 503 and a connection closed at once, so one tenant's flood cannot grow the daemon's threads,
/// descriptors or memory without bound; each container's own share is capped too (one thread for a command, its
/// server's request and connection caps for a proxy).
/// </summary>
internal sealed class DaemonLimit(string variable, string what, int max)
{
    /// <summary>The cap on guest threads (default <see cref="DefaultGuestThreads"/>).</summary>
    public const string GuestThreadsVariable = "CONTAINERD_WASMTIMED_MAX_GUEST_THREADS";

    /// <summary>Enough for thousands of idle commands, few enough that their stacks' reservations stay in bounds.</summary>
    public const int DefaultGuestThreads = 4096;

    /// <summary>The cap on open wasi:http connections (default <see cref="DefaultConnections"/>).</summary>
    public const string ConnectionsVariable = "CONTAINERD_WASMTIMED_MAX_CONNECTIONS";

    /// <summary>Sixteen containers' worth of the per-server default, far below the unit's descriptor limit.</summary>
    public const int DefaultConnections = 16_384;

    private int _used;

    /// <summary>The variable that sets the cap.</summary>
    public string Variable { get; } = variable;

    /// <summary>The cap.</summary>
    public int Max { get; } = max;

    /// <summary>Held now.</summary>
    public int InUse => Volatile.Read(ref _used);

    /// <summary>The daemon's cap on guest threads, from its environment.</summary>
    public static DaemonLimit GuestThreads() => FromEnvironment(GuestThreadsVariable, "guest threads", DefaultGuestThreads);

    /// <summary>The daemon's cap on wasi:http connections, from its environment.</summary>
    public static DaemonLimit Connections() => FromEnvironment(ConnectionsVariable, "wasi:http connections", DefaultConnections);

    // A value that is not a positive whole number stops the daemon at start, naming the variable.
    private static DaemonLimit FromEnvironment(string variable, string what, int fallback)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(text))
        {
            return new DaemonLimit(variable, what, fallback);
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
        {
            throw new InvalidOperationException($"{variable}={UntrustedText.Excerpt(text)}: expected a positive whole number");
        }
        return new DaemonLimit(variable, what, n);
    }

    /// <summary>Takes one if any is left under the cap.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var used = Volatile.Read(ref _used);
            if (used >= Max)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _used, used + 1, used) == used)
            {
                return true;
            }
        }
    }

    /// <summary>Takes one for container <paramref name="id"/>'s Create, or refuses it with ResourceExhausted naming
    /// the cap.</summary>
    public void Acquire(string id)
    {
        if (!TryAcquire())
        {
            throw new ShimException(StatusCode.ResourceExhausted,
                $"container {id}: the daemon already runs {Max} {what}, its cap ({Variable}); retry when others have ended, or run it in normal mode (io.containerd.wasmtime.v1)");
        }
    }

    /// <summary>Why a request past the cap is refused, for its 503.</summary>
    public string Refusal => $"the daemon runs {Max} {what}, its cap ({Variable}); try again\n";

    /// <summary>Gives back one taken before.</summary>
    public void Release() => Interlocked.Decrement(ref _used);
}
