namespace Shim.Tests.Shared;

/// <summary>
/// A valid core module that is slow to compile: an empty <c>_start</c> and many large functions of arithmetic on a few
/// locals (Cranelift's time grows with every instruction, and none of them can be skipped before code generation).
/// Written as a binary here: the text form of the same module would be several times its size.
/// </summary>
internal static class SlowCompileModule
{
    /// <summary>The module's bytes; <paramref name="salt"/> goes into the constants, so every run's module has a
    /// digest of its own and no cache (memory or disk) can hold it already.</summary>
    public static byte[] Build(int functions, int blocksPerFunction, int salt)
    {
        var body = new List<byte>();
        var code = new List<byte>();
        for (var f = 0; f < functions; f++)
        {
            body.Clear();
            body.AddRange([0x01, 0x04, 0x7f]); // four i32 locals
            for (var b = 0; b < blocksPerFunction; b++)
            {
                // local[(b+1)%4] = (local[b%4] + c) * local[(b+2)%4] ^ local[(b+3)%4]
                body.AddRange([0x20, (byte)(b % 4), 0x41]);
                SignedLeb(body, (salt + (f * 31) + b) & 0x3fff);
                body.AddRange([0x6a, 0x20, (byte)((b + 2) % 4), 0x6c, 0x20, (byte)((b + 3) % 4), 0x73, 0x21, (byte)((b + 1) % 4)]);
            }
            body.Add(0x0b);
            Leb(code, (uint)body.Count);
            code.AddRange(body);
        }
        // Function 0 is _start (empty), functions 1..n the filler; every filler is exported so none is dead code.
        var total = functions + 1;
        var module = new List<byte> { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00 };
        Section(module, 1, [0x01, 0x60, 0x00, 0x00]);
        var funcs = new List<byte>();
        Leb(funcs, (uint)total);
        funcs.AddRange(Enumerable.Repeat((byte)0, total));
        Section(module, 3, funcs);
        var exports = new List<byte>();
        Leb(exports, (uint)total);
        for (var i = 0; i < total; i++)
        {
            var name = i == 0 ? "_start"u8.ToArray() : System.Text.Encoding.ASCII.GetBytes($"f{i}");
            Leb(exports, (uint)name.Length);
            exports.AddRange(name);
            exports.Add(0x00);
            Leb(exports, (uint)i);
        }
        Section(module, 7, exports);
        var codeSection = new List<byte>();
        Leb(codeSection, (uint)total);
        codeSection.AddRange([0x02, 0x00, 0x0b]); // _start: no locals, end
        codeSection.AddRange(code);
        Section(module, 10, codeSection);
        return [.. module];
    }

    private static void Section(List<byte> module, byte id, List<byte> content)
    {
        module.Add(id);
        Leb(module, (uint)content.Count);
        module.AddRange(content);
    }

    private static void Leb(List<byte> to, uint value)
    {
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            to.Add(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
    }

    private static void SignedLeb(List<byte> to, int value)
    {
        while (true)
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            if ((value == 0 && (b & 0x40) == 0) || (value == -1 && (b & 0x40) != 0))
            {
                to.Add(b);
                return;
            }
            to.Add((byte)(b | 0x80));
        }
    }
}
