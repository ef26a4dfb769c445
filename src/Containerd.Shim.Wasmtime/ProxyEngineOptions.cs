namespace Containerd.Shim.Wasmtime;

/// <summary>
/// The settings of the engine the wasi:http host compiles a proxy component with. They decide whether an artifact fits,
/// so they are part of its cache key (<see cref="WasmtimeSettings.HttpKey"/>).
/// </summary>
/// <param name="OptLevel">Cranelift's optimization level.</param>
/// <param name="Pooling">Whether instances come from the pooling allocator.</param>
internal readonly record struct ProxyEngineOptions(global::Wasmtime.OptimizationLevel OptLevel, bool Pooling)
{
    /// <summary>The environment variable that turns the pooling allocator off (<c>0</c>).</summary>
    public const string PoolingVariable = "WASI_HTTP_POOLING";

    /// <summary>Speed, and the pooling allocator unless <see cref="PoolingVariable"/> is 0: with guest threads reused
    /// it served the echo component faster than the on-demand allocator (docs/benchmarks.md).</summary>
    public static ProxyEngineOptions Default => new(global::Wasmtime.OptimizationLevel.Speed, PoolingFromEnvironment());

    /// <summary>Whether the pooling allocator is on: unless <see cref="PoolingVariable"/> is 0.</summary>
    public static bool PoolingFromEnvironment() => Environment.GetEnvironmentVariable(PoolingVariable) != "0";
}
