using System.Globalization;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasmtime.Http;

/// <summary>
/// The shared-mode daemon's cap on guest threads, across all its tenants: a command container holds one from Create
/// until its guest's thread has returned, and a wasi:http request one while its guest runs. Past the cap a Create is
/// refused and a request answered 503, so one tenant's flood cannot grow the daemon's threads (and their stacks)
/// without bound; each container's own share is capped too (one for a command, its server's request cap for a proxy).
/// </summary>
internal sealed class GuestThreadLimit(int max)
{
    /// <summary>The cap (default <see cref="DefaultMax"/>).</summary>
    public const string Variable = "CONTAINERD_WASMTIMED_MAX_GUEST_THREADS";

    /// <summary>Enough for thousands of idle commands, few enough that their stacks' reservations stay in bounds.</summary>
    public const int DefaultMax = 4096;

    private int _used;

    /// <summary>The cap.</summary>
    public int Max { get; } = max;

    /// <summary>Threads held now.</summary>
    public int InUse => Volatile.Read(ref _used);

    /// <summary>The cap <see cref="Variable"/> asks for; a value that is not a positive whole number is refused by
    /// name.</summary>
    public static GuestThreadLimit FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(text))
        {
            return new GuestThreadLimit(DefaultMax);
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
        {
            throw new InvalidOperationException($"{Variable}={UntrustedText.Excerpt(text)}: expected a positive whole number");
        }
        return new GuestThreadLimit(n);
    }

    /// <summary>Takes a thread if one is left under the cap.</summary>
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

    /// <summary>Takes a thread for container <paramref name="id"/>'s Create, or refuses it with ResourceExhausted
    /// naming the cap.</summary>
    public void Acquire(string id)
    {
        if (!TryAcquire())
        {
            throw new ShimException(StatusCode.ResourceExhausted,
                $"container {id}: the daemon already runs {Max} guest threads, its cap ({Variable}); retry when others have ended, or run it in normal mode (io.containerd.wasmtime.v1)");
        }
    }

    /// <summary>Gives back a thread taken before.</summary>
    public void Release() => Interlocked.Decrement(ref _used);
}
