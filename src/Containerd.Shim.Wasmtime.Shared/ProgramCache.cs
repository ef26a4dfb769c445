using System.Globalization;
using Containerd.Shimkit;

namespace Containerd.Shim.Wasmtime.Shared;

/// <summary>
/// The daemon's compiled programs in memory (modules, components, proxy hosts), one per digest, compiled once however
/// many Creates ask at the same time. A container leases its program from Create until its store is gone; a program
/// no container leases is idle, and beyond <see cref="MaxIdle"/> idle ones the least recently used is disposed (the
/// artifact folder still has it, so the next Create loads rather than compiles). Without the bound, a tenant cycling
/// through distinct modules would grow the daemon's memory for as long as it runs. A failed compile is not kept: the
/// next Create tries again, behind the compile gate.
/// </summary>
internal sealed class ProgramCache(int maxIdle)
{
    /// <summary>Idle programs kept in memory (default <see cref="DefaultMaxIdle"/>).</summary>
    public const string MaxIdleVariable = "CONTAINERD_WASMTIMED_MAX_IDLE_PROGRAMS";

    /// <summary>Enough for a node's usual set of images; a componentize-js component is about 10 MB of code.</summary>
    public const int DefaultMaxIdle = 32;

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _clock;

    /// <summary>The bound on idle programs.</summary>
    public int MaxIdle { get; } = maxIdle;

    /// <summary>Programs in memory, leased or idle.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Values.Count(e => e.Program.IsValueCreated);
            }
        }
    }

    /// <summary>The bound <see cref="MaxIdleVariable"/> asks for (0 keeps none idle); a value that is not a whole
    /// number is refused by name.</summary>
    public static ProgramCache FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(MaxIdleVariable);
        if (string.IsNullOrEmpty(text))
        {
            return new ProgramCache(DefaultMaxIdle);
        }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            throw new InvalidOperationException($"{MaxIdleVariable}={UntrustedText.Excerpt(text)}: expected a whole number");
        }
        return new ProgramCache(n);
    }

    /// <summary>
    /// The program under <paramref name="key"/>, made by <paramref name="create"/> when it is not in memory (one
    /// caller makes it, the others wait); disposing the lease gives it back. <paramref name="create"/>'s exception
    /// reaches every caller waiting for it.
    /// </summary>
    public Lease<T> Acquire<T>(string key, Func<T> create) where T : class, IDisposable
    {
        Entry entry;
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                entry = new Entry(new Lazy<IDisposable>(create, LazyThreadSafetyMode.ExecutionAndPublication));
                _entries.Add(key, entry);
            }
            entry.Leases++;
        }
        try
        {
            return new Lease<T>(this, entry, (T)entry.Program.Value);
        }
        catch
        {
            lock (_gate)
            {
                entry.Leases--;
                // Lazy keeps its factory's exception; the entry goes, so the next Create compiles afresh.
                if (_entries.TryGetValue(key, out var current) && ReferenceEquals(current, entry))
                {
                    _entries.Remove(key);
                }
            }
            throw;
        }
    }

    /// <summary>Disposes every program, leased or not (the daemon's end).</summary>
    public void DisposeAll()
    {
        Entry[] all;
        lock (_gate)
        {
            all = [.. _entries.Values];
            _entries.Clear();
        }
        foreach (var entry in all.Where(e => e.Program.IsValueCreated))
        {
            entry.Program.Value.Dispose();
        }
    }

    private void Release(Entry entry)
    {
        var evicted = new List<IDisposable>();
        lock (_gate)
        {
            entry.Leases--;
            entry.LastUsed = ++_clock;
            if (entry.Leases == 0)
            {
                var idle = _entries.Where(e => e.Value.Leases == 0 && e.Value.Program.IsValueCreated).ToList();
                foreach (var (oldKey, old) in idle.OrderBy(e => e.Value.LastUsed).Take(Math.Max(0, idle.Count - MaxIdle)))
                {
                    _entries.Remove(oldKey);
                    evicted.Add(old.Program.Value);
                }
            }
        }
        foreach (var program in evicted)
        {
            ShimLog.Debug($"compiled program evicted from memory ({MaxIdle} idle kept)");
            program.Dispose();
        }
    }

    private sealed class Entry(Lazy<IDisposable> program)
    {
        public Lazy<IDisposable> Program { get; } = program;

        public int Leases { get; set; }

        public long LastUsed { get; set; }
    }

    /// <summary>A container's hold on its program; disposing it (once) gives the program back.</summary>
    public sealed class Lease<T> : IDisposable where T : class
    {
        private readonly ProgramCache _cache;
        // The cache's entry (a private type, so held as object).
        private readonly object _entry;
        private int _released;

        internal Lease(ProgramCache cache, object entry, T value)
        {
            _cache = cache;
            _entry = entry;
            Value = value;
        }

        /// <summary>The program.</summary>
        public T Value { get; }

        /// <inheritdoc/>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _cache.Release((Entry)_entry);
            }
        }
    }
}
