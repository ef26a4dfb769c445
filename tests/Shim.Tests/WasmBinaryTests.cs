using System.Text;
using Containerd.Shim.Wasm;
using Xunit;

namespace Shim.Tests;

/// <summary>Core module vs component by the header, a component's top-level exports, and what they make it.</summary>
public sealed class WasmBinaryTests
{
    private static readonly byte[] CoreHeader = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    private static readonly byte[] ComponentHeader = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    [Fact]
    public void Header_tells_a_core_module_from_a_component()
    {
        Assert.Equal(ModuleFormat.Binary, WasmBinary.FormatOf(CoreHeader));
        Assert.Equal(ModuleFormat.Component, WasmBinary.FormatOf(ComponentHeader));
        Assert.True(WasmBinary.IsCoreModule(CoreHeader));
        Assert.False(WasmBinary.IsCoreModule(ComponentHeader));
        // Another version after the magic is left to the engine to reject; no magic is not wasm at all.
        Assert.Equal(ModuleFormat.Binary, WasmBinary.FormatOf([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]));
        Assert.Equal(ModuleFormat.Binary, WasmBinary.FormatOf(CoreHeader.AsSpan(0, 4)));
        Assert.Null(WasmBinary.FormatOf("(module)"u8));
        Assert.Null(WasmBinary.FormatOf([]));
    }

    [Fact]
    public void Resolver_detects_a_component_file_in_the_rootfs()
    {
        var rootfs = Directory.CreateTempSubdirectory("comp-rootfs-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(rootfs, "c.wasm"), Component(["wasi:cli/run@0.2.12"]));
            File.WriteAllBytes(Path.Combine(rootfs, "m.wasm"), CoreHeader);

            Assert.Equal(ModuleFormat.Component, EntrypointResolver.Resolve(rootfs, ["/c.wasm"], [], "/").Format);
            Assert.Equal(ModuleFormat.Binary, EntrypointResolver.Resolve(rootfs, ["/m.wasm"], [], "/").Format);
        }
        finally
        {
            Directory.Delete(rootfs, recursive: true);
        }
    }

    [Fact]
    public void Exports_are_read_past_other_sections_and_type_ascriptions()
    {
        var bytes = Component(["wasi:cli/run@0.2.12", "my:pkg/api@1.0.0"], customSectionFirst: true, ascribe: true);

        Assert.Equal(new[] { "wasi:cli/run@0.2.12", "my:pkg/api@1.0.0" }, WasmBinary.ComponentExports(bytes));
    }

    [Fact]
    public void Truncated_or_non_component_bytes_are_refused()
    {
        var bytes = Component(["wasi:cli/run@0.2.12"]);

        Assert.Throws<InvalidDataException>(() => WasmBinary.ComponentExports(bytes.AsSpan(0, bytes.Length - 3)));
        Assert.Throws<InvalidDataException>(() => WasmBinary.ComponentExports(CoreHeader));
    }

    [Theory]
    [InlineData("wasi:cli/run@0.2.0", ComponentKind.Command)]
    [InlineData("wasi:cli/run@0.2.12", ComponentKind.Command)]
    [InlineData("wasi:http/incoming-handler@0.2.10", ComponentKind.HttpProxy)]
    public void Exports_decide_the_kind(string export, ComponentKind kind)
    {
        var (found, name) = ComponentWorld.Classify("c.wasm", ["other:pkg/x@1.0.0", export]);

        Assert.Equal(kind, found);
        Assert.Equal(export, name);
    }

    [Fact]
    public void A_command_that_also_serves_http_runs_as_a_command()
    {
        Assert.Equal(ComponentKind.Command,
            ComponentWorld.Classify("c.wasm", ["wasi:http/incoming-handler@0.2.0", "wasi:cli/run@0.2.0"]).Kind);
    }

    [Fact]
    public void Neither_names_the_exports_it_has()
    {
        var e = Assert.Throws<EntrypointException>(() => ComponentWorld.Classify("lib.wasm", ["my:pkg/api@1.0.0", "answer", "wasi:cli/run-ish@0.2.0"]));
        Assert.Equal(EntrypointError.NoSuchFunction, e.Error);
        Assert.Contains("lib.wasm", e.Message);
        Assert.Contains("neither a wasi:cli/command (no wasi:cli/run export) nor a wasi:http/proxy", e.Message);
        Assert.Contains("it exports: my:pkg/api@1.0.0, answer, wasi:cli/run-ish@0.2.0", e.Message);

        var none = Assert.Throws<EntrypointException>(() => ComponentWorld.Classify("empty.wasm", []));
        Assert.Contains("it exports: none", none.Message);
    }

    // A component as far as the export reader looks: the header, optionally a custom section, an export section.
    internal static byte[] Component(string[] exports, bool customSectionFirst = false, bool ascribe = false)
    {
        var bytes = new List<byte>(ComponentHeader);
        if (customSectionFirst)
        {
            Section(bytes, 0, [.. Name("note"), 1, 2, 3]);
        }
        var body = new List<byte>();
        body.AddRange(Leb((uint)exports.Length));
        for (var i = 0; i < exports.Length; i++)
        {
            body.Add(0x00);
            body.AddRange(Name(exports[i]));
            body.Add(0x05); // instance
            body.AddRange(Leb((uint)i));
            if (ascribe)
            {
                body.AddRange([0x01, 0x05, .. Leb(200)]); // (instance (type 200)): a two-byte LEB
            }
            else
            {
                body.Add(0x00);
            }
        }
        Section(bytes, 11, [.. body]);
        return [.. bytes];
    }

    private static void Section(List<byte> bytes, byte id, byte[] body)
    {
        bytes.Add(id);
        bytes.AddRange(Leb((uint)body.Length));
        bytes.AddRange(body);
    }

    private static byte[] Name(string s) => [.. Leb((uint)Encoding.UTF8.GetByteCount(s)), .. Encoding.UTF8.GetBytes(s)];

    private static List<byte> Leb(uint value)
    {
        var result = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            result.Add(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
        return result;
    }
}
