using System.Text.Json;

namespace Shim.Tests;

/// <summary>Small hand-written WASI modules (text format, which the shim accepts) and bundle configs for the tests.</summary>
public static class TestModules
{
    /// <summary>Traps at once with <c>unreachable</c>.</summary>
    public const string Trap = """(module (func (export "_start") unreachable))""";

    /// <summary>Prints its environment to stdout, entries separated by NUL (environ_get's own layout).</summary>
    public const string PrintEnv = """
        (module
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "_start")
            (drop (call $sizes (i32.const 0) (i32.const 4)))
            (drop (call $get (i32.const 1024) (i32.const 8192)))
            (i32.store (i32.const 16) (i32.const 8192))
            (i32.store (i32.const 20) (i32.load (i32.const 4)))
            (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
        """;

    /// <summary>A minimal OCI runtime config with the given process args and env.</summary>
    public static string ConfigJson(IReadOnlyList<string> args, IReadOnlyList<string> env, string cwd = "/") =>
        JsonSerializer.Serialize(new
        {
            ociVersion = "1.0.2",
            process = new { args, env, cwd },
            root = new { path = "rootfs" },
        });
}
