using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// The engine's settings, read once per instance process from the environment containerd passes to its shims, and
/// what follows from them: the <see cref="Engine"/>, the compatibility hash compiled artifacts are keyed by, the
/// folder that caches artifacts of rootfs modules, and the optional compile log.
/// </summary>
/// <remarks>
/// libwasmtime's C API has no call for Wasmtime's own precompile compatibility hash, so the hash is derived here from
/// what decides whether an artifact fits: the Wasmtime release (the NuGet package pins the native library), the
/// host architecture and every <see cref="Config"/> setting this class applies. A setting added to
/// <see cref="CreateEngine"/> must be added to <see cref="Description"/> too. Wasmtime checks the same things again
/// when it deserializes, so a hash that missed something would cost a recompile, not a wrong load.
/// </remarks>
internal sealed class CompilationCache
{
    /// <summary>The cache folder for rootfs modules; <c>off</c> disables it.</summary>
    public const string DirectoryVariable = "CONTAINERD_SHIM_WASMTIME_CACHE";

    /// <summary>The size bound of the cache folder (bytes, or with a K, M or G suffix).</summary>
    public const string SizeVariable = "CONTAINERD_SHIM_WASMTIME_CACHE_SIZE";

    /// <summary>Cranelift's optimization level: <c>speed</c> (default), <c>none</c> or <c>speed_and_size</c>.</summary>
    public const string OptLevelVariable = "CONTAINERD_SHIM_WASMTIME_OPT_LEVEL";

    /// <summary>A file that gets one line per real compilation (not per cache hit); unset by default.</summary>
    public const string CompileLogVariable = "CONTAINERD_SHIM_WASMTIME_COMPILE_LOG";

    /// <summary>The default folder (FHS: cached data an application can regenerate).</summary>
    public const string DefaultDirectory = "/var/cache/containerd-shim-wasmtime";

    /// <summary>The default size bound: 512 MiB.</summary>
    public const long DefaultMaxBytes = 512L << 20;

    private CompilationCache(OptimizationLevel optLevel, bool httpPooling, string? directory, long maxBytes, string? compileLog)
    {
        OptLevel = optLevel;
        Directory = directory;
        MaxBytes = maxBytes;
        CompileLog = compileLog;
        var version = typeof(Engine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(Engine).Assembly.GetName().Version?.ToString() ?? "unknown";
        Description = $"wasmtime {version}; {RuntimeInformation.ProcessArchitecture}; opt-level={OptLevelName(optLevel)}";
        CompatibilityHash = Hash(Description);
        HttpEngine = new Http.ProxyEngineOptions(optLevel, httpPooling);
        // The wasi:http host compiles on an engine of its own (libwasmtime's defaults, not the .NET binding's), so its
        // artifacts get keys of their own even where the settings read alike.
        HttpDescription = $"{Description}; wasi:http host; epoch interruption{(httpPooling ? "; pooling allocator" : "")}";
        HttpCompatibilityHash = Hash(HttpDescription);
    }

    private int _refusalLogged;

    /// <summary>Cranelift's optimization level.</summary>
    public OptimizationLevel OptLevel { get; }

    /// <summary>The folder for rootfs modules' artifacts, or null when disabled.</summary>
    public string? Directory { get; }

    /// <summary>The size bound of <see cref="Directory"/>.</summary>
    public long MaxBytes { get; }

    /// <summary>The compile log, or null.</summary>
    public string? CompileLog { get; }

    /// <summary>What the compatibility hash is made of.</summary>
    public string Description { get; }

    /// <summary>16 hex digits of the sha256 of <see cref="Description"/>.</summary>
    public string CompatibilityHash { get; }

    /// <summary>The settings of the engine wasi:http proxy components are compiled with.</summary>
    public Http.ProxyEngineOptions HttpEngine { get; }

    /// <summary>What the compatibility hash of proxy components' artifacts is made of.</summary>
    public string HttpDescription { get; }

    /// <summary>16 hex digits of the sha256 of <see cref="HttpDescription"/>: the key of proxy components' artifacts.</summary>
    public string HttpCompatibilityHash { get; }

    /// <summary>Reads the settings from the environment.</summary>
    /// <exception cref="ShimException">A variable has a value it cannot have; the message names it.</exception>
    public static CompilationCache FromEnvironment()
    {
        var optLevel = Environment.GetEnvironmentVariable(OptLevelVariable) switch
        {
            null or "" or "speed" => OptimizationLevel.Speed,
            "none" => OptimizationLevel.None,
            "speed_and_size" => OptimizationLevel.SpeedAndSize,
            var other => throw new ShimException(StatusCode.InvalidArgument,
                $"{OptLevelVariable}={other}: not an optimization level (use speed, none or speed_and_size)"),
        };
        var dir = Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } d ? d : DefaultDirectory;
        var size = Environment.GetEnvironmentVariable(SizeVariable) is { Length: > 0 } s
            ? ByteSize.Parse(s) ?? throw new ShimException(StatusCode.InvalidArgument,
                $"{SizeVariable}={s}: not a size (use bytes, or a number with K, M or G)")
            : DefaultMaxBytes;
        var log = Environment.GetEnvironmentVariable(CompileLogVariable) is { Length: > 0 } l ? l : null;
        return new CompilationCache(optLevel, Http.ProxyEngineOptions.PoolingFromEnvironment(), dir == "off" ? null : dir, size, log);
    }

    /// <summary>Creates an engine with these settings.</summary>
    public Engine CreateEngine()
    {
        using var config = new Config().WithOptimizationLevel(OptLevel);
        return new Engine(config);
    }

    /// <summary>
    /// The folder cache for a rootfs module with <paramref name="moduleDigest"/>, or null when disabled or refused:
    /// the folder holds native code other containers run, so it is used only when root alone can write it and the
    /// path to it (<see cref="DirectoryModuleCache.OpenTrusted"/>). A refusal is logged at error level, once per
    /// process, and <paramref name="refusal"/> says why; modules are then compiled in memory.
    /// </summary>
    public ICompiledModuleCache? ForRootfsModule(string moduleDigest, out string? refusal)
    {
        refusal = null;
        if (Directory is not { } dir)
        {
            return null;
        }
        var cache = DirectoryModuleCache.OpenTrusted(dir, MaxBytes, moduleDigest, out refusal);
        if (cache is null && Interlocked.Exchange(ref _refusalLogged, 1) == 0)
        {
            var message = $"{DirectoryVariable}={dir} is not used, modules are compiled in memory: {refusal}";
            // A container that runs as another user cannot make or use root's folder: expected, not an error.
            if (Environment.IsPrivilegedProcess)
            {
                ShimLog.Error(message);
            }
            else
            {
                ShimLog.Debug(message);
            }
        }
        return cache;
    }

    /// <summary>Appends one line to the compile log, when there is one. Lines are short single writes in append mode,
    /// which concurrent instance processes cannot interleave.</summary>
    public void RecordCompilation(string moduleDigest, string compatibilityHash, string name, string reason)
    {
        if (CompileLog is not { } path)
        {
            return;
        }
        try
        {
            var line = Encoding.UTF8.GetBytes(
                $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {moduleDigest} {compatibilityHash} {name.Replace(' ', '_')} {reason.ReplaceLineEndings(" ")}\n");
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            stream.Write(line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Debug($"compile log {path}: {e.Message}");
        }
    }

    internal static string Hash(string description) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(description)))[..16];

    private static string OptLevelName(OptimizationLevel level) => level switch
    {
        OptimizationLevel.None => "none",
        OptimizationLevel.SpeedAndSize => "speed_and_size",
        _ => "speed",
    };
}
