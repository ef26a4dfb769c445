using Containerd.Shim.Wasmtime.Shared;
using Xunit;

namespace Shim.Tests;

/// <summary>The shared-mode daemon's compiled programs in memory: leases, the idle bound, failed compiles.</summary>
public sealed class ProgramCacheTests
{
    private sealed class Program(string name) : IDisposable
    {
        public string Name { get; } = name;

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void One_compile_serves_every_lease_and_the_least_recently_used_idle_program_goes_first()
    {
        var cache = new ProgramCache(maxIdle: 1);
        var compiles = 0;
        Program Make(string name)
        {
            compiles++;
            return new Program(name);
        }
        var a1 = cache.Acquire("a", () => Make("a"));
        var a2 = cache.Acquire("a", () => Make("a"));
        Assert.Same(a1.Value, a2.Value);
        Assert.Equal(1, compiles);
        var b = cache.Acquire("b", () => Make("b"));
        a1.Dispose();
        a2.Dispose();
        // a is idle, b leased: one idle is allowed.
        Assert.False(a1.Value.Disposed);
        Assert.Equal(2, cache.Count);
        b.Dispose();
        // Two idle: a, idle longer, is disposed.
        Assert.True(a1.Value.Disposed);
        Assert.False(b.Value.Disposed);
        Assert.Equal(1, cache.Count);
        // Disposing a lease twice gives it back once.
        b.Dispose();
        using var again = cache.Acquire("a", () => Make("a"));
        Assert.Equal(3, compiles);
        Assert.False(again.Value.Disposed);
    }

    [Fact]
    public void A_program_in_use_is_never_evicted_even_past_the_bound()
    {
        var cache = new ProgramCache(maxIdle: 0);
        var leased = cache.Acquire("leased", () => new Program("leased"));
        var idle = cache.Acquire("idle", () => new Program("idle"));
        idle.Dispose();
        Assert.True(idle.Value.Disposed);
        Assert.False(leased.Value.Disposed);
        leased.Dispose();
        Assert.True(leased.Value.Disposed);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void A_failed_compile_is_not_kept()
    {
        var cache = new ProgramCache(maxIdle: 4);
        Assert.Throws<OperationCanceledException>(() => cache.Acquire<Program>("a", () => throw new OperationCanceledException()));
        using var lease = cache.Acquire("a", () => new Program("a"));
        Assert.Equal("a", lease.Value.Name);
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void Dispose_all_releases_leased_and_idle_programs()
    {
        var cache = new ProgramCache(maxIdle: 4);
        var leased = cache.Acquire("a", () => new Program("a"));
        var idle = cache.Acquire("b", () => new Program("b"));
        idle.Dispose();
        cache.DisposeAll();
        Assert.True(leased.Value.Disposed);
        Assert.True(idle.Value.Disposed);
    }
}
