using System.Reflection;
using System.Runtime.InteropServices;
using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// The engine's settings, read once per instance process from the environment containerd passes to its shims, and
/// what follows from them: the <see cref="Engine"/>, the keys compiled artifacts are kept under, and the wasm layer's
/// <see cref="CompileCache"/> (folder, size bound, compile log) under the name <c>wasmtime</c>.
/// </summary>
/// <remarks>
/// libwasmtime's C API has no call for Wasmtime's own precompile compatibility hash, so the hash is derived here from
/// what decides whether an artifact fits: the Wasmtime release (the NuGet package pins the native library), the
/// host architecture and every <see cref="Config"/> setting this class applies. A setting added to
/// <see cref="CreateEngine"/> must be added to <see cref="Description"/> too. Wasmtime checks the same things again
/// when it deserializes, so a hash that missed something would cost a recompile, not a wrong load.
/// </remarks>
internal sealed class WasmtimeSettings
{
    /// <summary>The engine name the settings and the normal-mode artifacts are kept under.</summary>
    public const string EngineName = "wasmtime";

    /// <summary>Cranelift's optimization level: <c>speed</c> (default), <c>none</c> or <c>speed_and_size</c>.</summary>
    public const string OptLevelVariable = "CONTAINERD_SHIM_WASMTIME_OPT_LEVEL";

    private WasmtimeSettings(OptimizationLevel optLevel, bool httpPooling, CompileCache cache)
    {
        OptLevel = optLevel;
        Cache = cache;
        var version = typeof(Engine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(Engine).Assembly.GetName().Version?.ToString() ?? "unknown";
        Description = $"wasmtime {version}; {RuntimeInformation.ProcessArchitecture}; opt-level={OptLevelName(optLevel)}";
        Key = ArtifactKey.Describe(EngineName, Description);
        HttpEngine = new ProxyEngineOptions(optLevel, httpPooling);
        // The wasi:http host compiles on an engine of its own (libwasmtime's defaults, not the .NET binding's), so its
        // artifacts get keys of their own even where the settings read alike.
        HttpDescription = $"{Description}; wasi:http host; epoch interruption{(httpPooling ? "; pooling allocator" : "")}";
        HttpKey = ArtifactKey.Describe(EngineName, HttpDescription);
    }

    /// <summary>Cranelift's optimization level.</summary>
    public OptimizationLevel OptLevel { get; }

    /// <summary>Where compiled programs are kept, and the compile log.</summary>
    public CompileCache Cache { get; }

    /// <summary>What the compatibility hash of modules and command components is made of.</summary>
    public string Description { get; }

    /// <summary>The key of modules' and command components' artifacts.</summary>
    public ArtifactKey Key { get; }

    /// <summary>The settings of the engine wasi:http proxy components are compiled with.</summary>
    public ProxyEngineOptions HttpEngine { get; }

    /// <summary>What the compatibility hash of proxy components' artifacts is made of.</summary>
    public string HttpDescription { get; }

    /// <summary>The key of proxy components' artifacts.</summary>
    public ArtifactKey HttpKey { get; }

    /// <summary>Reads the settings from the environment.</summary>
    /// <exception cref="ShimException">A variable has a value it cannot have; the message names it.</exception>
    public static WasmtimeSettings FromEnvironment()
    {
        var optLevel = Environment.GetEnvironmentVariable(OptLevelVariable) switch
        {
            null or "" or "speed" => OptimizationLevel.Speed,
            "none" => OptimizationLevel.None,
            "speed_and_size" => OptimizationLevel.SpeedAndSize,
            var other => throw new ShimException(StatusCode.InvalidArgument,
                $"{OptLevelVariable}={other}: not an optimization level (use speed, none or speed_and_size)"),
        };
        return new WasmtimeSettings(optLevel, ProxyEngineOptions.PoolingFromEnvironment(), CompileCache.FromEnvironment(EngineName));
    }

    /// <summary>Creates an engine with these settings.</summary>
    public Engine CreateEngine()
    {
        using var config = new Config().WithOptimizationLevel(OptLevel);
        return new Engine(config);
    }

    private static string OptLevelName(OptimizationLevel level) => level switch
    {
        OptimizationLevel.None => "none",
        OptimizationLevel.SpeedAndSize => "speed_and_size",
        _ => "speed",
    };
}
