namespace Containerd.Shim.Wasm;

/// <summary>How a module's bytes are encoded, and whether they are a core module or a component.</summary>
public enum ModuleFormat
{
    /// <summary>A core module in the binary format: the magic <c>\0asm</c>, then version 1 (<c>01 00 00 00</c>).</summary>
    Binary,

    /// <summary>The text format (a <c>.wat</c> file).</summary>
    Text,

    /// <summary>A component (WASI 0.2 and later) in the binary format: the magic <c>\0asm</c>, then the component
    /// version and layer (<c>0d 00 01 00</c>).</summary>
    Component,
}
