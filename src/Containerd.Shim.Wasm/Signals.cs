namespace Containerd.Shim.Wasm;

/// <summary>Linux signal numbers the wasm layer sends.</summary>
internal static class Signals
{
    /// <summary>Kills without a chance to clean up.</summary>
    public const int SIGKILL = 9;
}
