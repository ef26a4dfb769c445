namespace Containerd.Shim.Wasm;

/// <summary>How a module's bytes are encoded.</summary>
public enum ModuleFormat
{
    /// <summary>The binary format, starting with the magic <c>\0asm</c>.</summary>
    Binary,

    /// <summary>The text format (a <c>.wat</c> file).</summary>
    Text,
}
