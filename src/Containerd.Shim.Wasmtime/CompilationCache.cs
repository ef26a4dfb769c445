using Containerd.Shimkit;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// Wasmtime's own on-disk cache of compiled modules, shared by every instance process on the host: each container
/// is a fresh process, so without it every container of the same image compiles its module again (about 100 ms
/// for the demo, most of a container's start). Wasmtime keys entries by module bytes, engine version and settings,
/// so a stale entry is never used.
/// </summary>
internal static class CompilationCache
{
    /// <summary>Overrides the cache folder; <c>off</c> disables the cache.</summary>
    public const string DirectoryVariable = "CONTAINERD_SHIM_WASMTIME_CACHE";

    /// <summary>The default folder (FHS: cached data an application can regenerate).</summary>
    public const string DefaultDirectory = "/var/cache/containerd-shim-wasmtime";

    /// <summary>Creates the engine, with the cache when its folder is usable, without it otherwise.</summary>
    public static Engine CreateEngine()
    {
        var dir = Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } d ? d : DefaultDirectory;
        if (dir == "off")
        {
            return new Engine();
        }
        try
        {
            Directory.CreateDirectory(dir);
            var config = Path.Combine(dir, "cache.toml");
            var text = $"[cache]\ndirectory = \"{Path.Combine(dir, "modules").Replace("\\", "\\\\").Replace("\"", "\\\"")}\"\n";
            if (!File.Exists(config) || File.ReadAllText(config) != text)
            {
                // Written to a private name first: instance processes of other containers may read it right now.
                var partial = $"{config}.{Environment.ProcessId}";
                File.WriteAllText(partial, text);
                File.Move(partial, config, overwrite: true);
            }
            using var cfg = new Config().WithCacheConfig(config);
            return new Engine(cfg);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or WasmtimeException)
        {
            // A read-only or full disk costs compile time, never the container.
            ShimLog.Debug($"wasmtime compilation cache at {dir} unusable, compiling without it: {e.Message}");
            return new Engine();
        }
    }
}
