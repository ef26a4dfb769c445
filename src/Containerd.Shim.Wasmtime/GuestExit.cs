using Containerd.Shim.Wasm;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// How a guest's run ended when Wasmtime threw, the same for modules and command components in an instance process
/// and in the shared daemon: the program's own status, a trap, or not the guest's doing at all.
/// </summary>
internal static class GuestExit
{
    /// <summary>
    /// The exit status for <paramref name="e"/>: the status a program chose (WASI's proc_exit, wasi:cli/exit), or
    /// <see cref="ExitCodes.Trap"/> with <paramref name="stderrLine"/> set to what the container's stderr should say;
    /// null when <paramref name="e"/> is not a guest outcome (the caller treats it as a host failure).
    /// </summary>
    public static int? Of(Exception e, string program, out string? stderrLine)
    {
        stderrLine = null;
        if (e is WasmtimeException { ExitCode: { } exit })
        {
            return exit;
        }
        // A component's trap surfaces as a plain WasmtimeException, a core module's as a TrapException.
        if (e is TrapException or WasmtimeException)
        {
            stderrLine = $"wasmtime: {program}: {OneLine(e.Message)}";
            return ExitCodes.Trap;
        }
        return null;
    }

    /// <summary>Wasmtime's multi-line error as one line, the cause included: it puts the cause last
    /// ("Caused by: ..."), which is the part a user can act on.</summary>
    public static string OneLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(": ", lines.Where(l => l != "Caused by:" && !l.StartsWith("0:", StringComparison.Ordinal)));
    }
}
