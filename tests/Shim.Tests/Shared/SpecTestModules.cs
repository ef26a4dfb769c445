using System.Text;

namespace Shim.Tests.Shared;

/// <summary>WASI preview 1 guests that touch one file of one preopen, addressed by descriptor number (the preopens
/// come in order from fd 3), so they need no libc and no preopen-name lookup.</summary>
internal static class SpecTestModules
{
    private const string Imports = """
          (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
        """;

    /// <summary>Creates (O_CREAT|O_TRUNC, fd_write right) <paramref name="file"/> in preopen <paramref name="fd"/>
    /// and writes "written\n" to it; exits with path_open's or fd_write's errno, 0 when both succeed.</summary>
    public static string Writer(int fd, string file) => $$"""
        (module
        {{Imports}}
          (data (i32.const 100) "{{file}}")
          (data (i32.const 200) "written\n")
          (func (export "_start") (local $e i32)
            (local.set $e (call $open (i32.const {{fd}}) (i32.const 0) (i32.const 100) (i32.const {{Encoding.UTF8.GetByteCount(file)}})
              (i32.const 9) (i64.const 0x40) (i64.const 0) (i32.const 0) (i32.const 0)))
            (if (i32.ne (local.get $e) (i32.const 0)) (then (call $exit (local.get $e))))
            (i32.store (i32.const 16) (i32.const 200))
            (i32.store (i32.const 20) (i32.const 8))
            (call $exit (call $write (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 24)))))
        """;

    /// <summary>After sleeping <paramref name="sleepSeconds"/>, copies up to 1 KiB of <paramref name="file"/> in
    /// preopen <paramref name="fd"/> to stdout; exits with path_open's errno, or 0.</summary>
    public static string Reader(int fd, string file, int sleepSeconds) => $$"""
        (module
        {{Imports}}
          (data (i32.const 100) "{{file}}")
          (func (export "_start") (local $e i32)
            ;; One relative monotonic clock subscription (tag 0, clock id 1) at 300, its event at 400.
            (i32.store (i32.const 316) (i32.const 1))
            (i64.store (i32.const 324) (i64.const {{sleepSeconds * 1_000_000_000L}}))
            (drop (call $poll (i32.const 300) (i32.const 400) (i32.const 1) (i32.const 440)))
            (local.set $e (call $open (i32.const {{fd}}) (i32.const 0) (i32.const 100) (i32.const {{Encoding.UTF8.GetByteCount(file)}})
              (i32.const 0) (i64.const 0x2) (i64.const 0) (i32.const 0) (i32.const 0)))
            (if (i32.ne (local.get $e) (i32.const 0)) (then (call $exit (local.get $e))))
            (i32.store (i32.const 16) (i32.const 1024))
            (i32.store (i32.const 20) (i32.const 1024))
            (drop (call $read (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 24)))
            (i32.store (i32.const 20) (i32.load (i32.const 24)))
            (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 28)))
            (call $exit (i32.const 0))))
        """;
}
