using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Wasmtime;

namespace Containerd.Shim.Wasmtime;

/// <summary>
/// How a guest's run ended when Wasmtime threw, the same for modules and command components in an instance process
/// and in the shared daemon: the program's own status, a trap, or not the guest's doing at all.
/// </summary>
internal static class GuestExit
{
    private const int TrapLineLength = 400;

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
            // The container's own stderr, not containerd's log: room for a few backtrace frames.
            stderrLine = $"wasmtime: {UntrustedText.Excerpt(program)}: {OneLine(e.Message, TrapLineLength)}";
            return ExitCodes.Trap;
        }
        return null;
    }

    /// <summary>Wasmtime's multi-line error as one line, the cause included: it puts the cause last
    /// ("Caused by: ..."), which is the part a user can act on. Wasmtime quotes the module in its errors (a text
    /// module's source lines, export, import and function names), so the line is an <see cref="UntrustedText.Excerpt"/>
    /// of at most <paramref name="maxLength"/> characters.</summary>
    public static string OneLine(string message, int maxLength = UntrustedText.ExcerptLength)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return UntrustedText.Excerpt(string.Join(": ", lines.Where(l => l != "Caused by:" && !l.StartsWith("0:", StringComparison.Ordinal))), maxLength);
    }
}
