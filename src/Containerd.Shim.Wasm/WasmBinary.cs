namespace Containerd.Shim.Wasm;

/// <summary>
/// What the first bytes of a wasm binary say, and the top-level export names of a component, read without an engine.
/// A core module and a component share the magic <c>\0asm</c>; the 32-bit field after it tells them apart: version 1
/// for a core module, version <c>0x0d</c> with layer 1 for a component.
/// </summary>
public static class WasmBinary
{
    /// <summary>How many bytes <see cref="FormatOf"/> needs.</summary>
    public const int HeaderLength = 8;

    private static ReadOnlySpan<byte> Magic => "\0asm"u8;
    private static ReadOnlySpan<byte> CoreVersion => [0x01, 0x00, 0x00, 0x00];
    private static ReadOnlySpan<byte> ComponentVersion => [0x0d, 0x00, 0x01, 0x00];

    /// <summary>Whether <paramref name="bytes"/> start with the wasm magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> bytes) => bytes.StartsWith(Magic);

    /// <summary>
    /// <see cref="ModuleFormat.Component"/> for a component header, <see cref="ModuleFormat.Binary"/> for any other
    /// binary with the magic (a core module, or something the engine will reject with its own words), null without
    /// the magic.
    /// </summary>
    public static ModuleFormat? FormatOf(ReadOnlySpan<byte> header)
    {
        if (!HasMagic(header))
        {
            return null;
        }
        return header.Length >= HeaderLength && header[4..HeaderLength].SequenceEqual(ComponentVersion)
            ? ModuleFormat.Component
            : ModuleFormat.Binary;
    }

    /// <summary>Whether the header is a core module of the one version engines run.</summary>
    public static bool IsCoreModule(ReadOnlySpan<byte> header) =>
        HasMagic(header) && header.Length >= HeaderLength && header[4..HeaderLength].SequenceEqual(CoreVersion);

    /// <summary>
    /// The names a component exports at its top level (interfaces such as <c>wasi:cli/run@0.2.12</c>, functions,
    /// types), in binary order. Nested components and core modules are skipped. Throws
    /// <see cref="InvalidDataException"/> when the bytes are not a well-formed component as far as this reads.
    /// </summary>
    public static IReadOnlyList<string> ComponentExports(ReadOnlySpan<byte> component)
    {
        if (FormatOf(component) != ModuleFormat.Component)
        {
            throw new InvalidDataException("not a component: the header is not \\0asm 0d 00 01 00");
        }
        var names = new List<string>();
        var reader = new WasmReader(component[HeaderLength..]);
        while (!reader.AtEnd)
        {
            var id = reader.Byte();
            var size = (int)reader.U32();
            var body = reader.Take(size);
            // Section 11 is the component export section; every other section is skipped by its size.
            if (id == 11)
            {
                ReadExports(new WasmReader(body), names);
            }
        }
        return names;
    }

    private static void ReadExports(WasmReader r, List<string> names)
    {
        var count = r.U32();
        for (var i = 0u; i < count; i++)
        {
            // exportname': a discriminator byte (0x00, or 0x01 from older encoders), then the name.
            if (r.Byte() is not (0x00 or 0x01))
            {
                throw new InvalidDataException("malformed export name");
            }
            names.Add(r.Name());
            // sortidx: core sorts take a second byte.
            if (r.Byte() == 0x00)
            {
                r.Byte();
            }
            r.U32();
            // An optional type ascription.
            if (r.Byte() == 0x01)
            {
                SkipExternDesc(ref r);
            }
        }
    }

    private static void SkipExternDesc(ref WasmReader r)
    {
        var kind = r.Byte();
        switch (kind)
        {
            case 0x00:
                r.Byte(); // core module: 0x11
                r.U32();
                break;
            case 0x02:
                // A value bound: an index or a value type. Value exports are a gated feature nothing here emits;
                // a primitive type is one byte, a type index a LEB.
                if (r.Byte() == 0x00)
                {
                    r.U32();
                }
                else
                {
                    r.S33();
                }
                break;
            case 0x03:
                if (r.Byte() == 0x00)
                {
                    r.U32(); // eq bound
                }
                break;
            case 0x01 or 0x04 or 0x05:
                r.U32();
                break;
            default:
                throw new InvalidDataException($"unknown extern kind 0x{kind:x2}");
        }
    }
}
