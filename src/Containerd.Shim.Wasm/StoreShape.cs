namespace Containerd.Shim.Wasm;

/// <summary>
/// How many linear memories, tables and core instances one instantiation of a binary makes, read from the binary
/// without an engine. An engine's per-store limits are per memory and per table (Wasmtime's allow 10,000 of each);
/// capping the counts at what the binary declares and dividing the container's memory limit among them makes that
/// limit cover the whole store. A component is counted as if each of its core modules were instantiated once, as
/// the component tooling emits them; one instantiated twice exceeds the caps and fails to instantiate, loudly.
/// </summary>
public readonly struct StoreShape
{
    // Nested components deeper than this are refused rather than followed (the stack is the host's).
    private const int MaxNesting = 32;

    /// <summary>A shape of the given counts.</summary>
    public StoreShape(int memories, int tables, int instances)
    {
        Memories = memories;
        Tables = tables;
        Instances = instances;
    }

    /// <summary>Linear memories the core modules define (an imported one is another's, counted there).</summary>
    public int Memories { get; }

    /// <summary>Tables the core modules define.</summary>
    public int Tables { get; }

    /// <summary>Core instances: 1 for a module; for a component, the entries of its core instance sections (an
    /// upper bound of its instantiations).</summary>
    public int Instances { get; }

    /// <summary>
    /// The shape of a core module or component binary. Throws <see cref="InvalidDataException"/> for bytes that
    /// are neither, or malformed as far as this reads.
    /// </summary>
    public static StoreShape Of(ReadOnlySpan<byte> binary) => WasmBinary.FormatOf(binary) switch
    {
        ModuleFormat.Component => OfComponent(binary, 0),
        ModuleFormat.Binary when WasmBinary.IsCoreModule(binary) => OfModule(binary),
        _ => throw new InvalidDataException("neither a core module nor a component"),
    };

    /// <summary>
    /// Per-store limits for a container memory limit of <paramref name="limit"/> bytes: a sixteenth for the tables'
    /// elements (8 bytes each, as an engine stores a reference), the rest split evenly among the memories. Null
    /// sizes for no limit (the counts are capped still).
    /// </summary>
    public (long? MemorySize, uint? TableElements) Budget(long? limit)
    {
        if (limit is not > 0)
        {
            return (null, null);
        }
        var tableBytes = limit.Value / 16;
        var memorySize = (limit.Value - tableBytes) / Math.Max(1, Memories);
        var elements = Math.Clamp(tableBytes / 8 / Math.Max(1, Tables), 1, uint.MaxValue);
        return (memorySize, (uint)elements);
    }

    private static StoreShape OfModule(ReadOnlySpan<byte> module)
    {
        int memories = 0, tables = 0;
        var reader = new WasmReader(module[WasmBinary.HeaderLength..]);
        while (!reader.AtEnd)
        {
            var id = reader.Byte();
            var body = new WasmReader(reader.Take((int)reader.U32()));
            switch (id)
            {
                case 4:
                    tables = Add(tables, body.U32());
                    break;
                case 5:
                    memories = Add(memories, body.U32());
                    break;
            }
        }
        return new StoreShape(memories, tables, 1);
    }

    private static StoreShape OfComponent(ReadOnlySpan<byte> component, int depth)
    {
        if (depth > MaxNesting)
        {
            throw new InvalidDataException($"components nested deeper than {MaxNesting}");
        }
        int memories = 0, tables = 0, instances = 0;
        var reader = new WasmReader(component[WasmBinary.HeaderLength..]);
        while (!reader.AtEnd)
        {
            var id = reader.Byte();
            var body = reader.Take((int)reader.U32());
            StoreShape inner;
            switch (id)
            {
                case 1: // a core module
                    inner = Of(body);
                    break;
                case 4: // a nested component
                    inner = OfComponent(body, depth + 1);
                    break;
                case 2: // core instances
                    inner = new StoreShape(0, 0, Add(0, new WasmReader(body).U32()));
                    break;
                default:
                    continue;
            }
            memories = Add(memories, (uint)inner.Memories);
            tables = Add(tables, (uint)inner.Tables);
            if (id != 1)
            {
                instances = Add(instances, (uint)inner.Instances);
            }
        }
        return new StoreShape(memories, tables, Math.Max(instances, 1));
    }

    private static int Add(int a, uint b) =>
        b > int.MaxValue - a ? throw new InvalidDataException("more memories, tables or instances than can be counted") : a + (int)b;
}
