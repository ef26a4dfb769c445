namespace Containerd.Shim.Wasm;

/// <summary>Reads the wasm binary encoding (core and component) forward; every malformed read throws
/// <see cref="InvalidDataException"/>, never reads past the span.</summary>
internal ref struct WasmReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _data = data;

    public readonly bool AtEnd => _data.IsEmpty;

    public byte Byte()
    {
        if (_data.IsEmpty)
        {
            throw new InvalidDataException("unexpected end of the binary");
        }
        var b = _data[0];
        _data = _data[1..];
        return b;
    }

    public uint U32()
    {
        uint result = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = Byte();
            result |= (uint)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }
        throw new InvalidDataException("malformed LEB128");
    }

    public void S33()
    {
        for (var i = 0; i < 5; i++)
        {
            if ((Byte() & 0x80) == 0)
            {
                return;
            }
        }
        throw new InvalidDataException("malformed LEB128");
    }

    public ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _data.Length)
        {
            throw new InvalidDataException("section runs past the end of the binary");
        }
        var taken = _data[..n];
        _data = _data[n..];
        return taken;
    }

    public string Name() => System.Text.Encoding.UTF8.GetString(Take((int)U32()));
}
