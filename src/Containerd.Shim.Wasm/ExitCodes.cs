namespace Containerd.Shim.Wasm;

/// <summary>
/// Exit codes an instance process uses for outcomes that are not the program's own exit code. Death by signal N is
/// 128+N (the reaper reports it); a program's own code is passed through unchanged.
/// </summary>
public static class ExitCodes
{
    /// <summary>The module trapped (e.g. <c>unreachable</c>); the trap is printed on the container's stderr.
    /// 134 is what the wasmtime CLI uses, so a trap looks the same under a shim and on a terminal.</summary>
    public const int Trap = 134;

    /// <summary>The instance process failed before or around the program (a shim bug or a host error); the reason is
    /// printed on the container's stderr. 125 is what runc and docker use for "the runtime failed".</summary>
    public const int InternalError = 125;
}
