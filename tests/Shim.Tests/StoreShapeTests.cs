using Containerd.Shim.Wasm;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>What one instantiation of a binary makes, and how a memory limit is split among it.</summary>
public sealed class StoreShapeTests
{
    [Fact]
    public void A_module_counts_the_memories_and_tables_it_defines_not_those_it_imports()
    {
        var wasm = Wasmtime.Module.ConvertText("""
            (module
              (import "env" "shared" (memory 1))
              (import "env" "t" (table 1 funcref))
              (memory 1) (memory 2 10) (memory 1)
              (table 4 funcref) (table 1 externref))
            """);
        var shape = StoreShape.Of(wasm);
        Assert.Equal(3, shape.Memories);
        Assert.Equal(2, shape.Tables);
        Assert.Equal(1, shape.Instances);
    }

    [Fact]
    public async Task A_component_counts_its_core_modules_memories_tables_and_instances()
    {
        // componentize-js output: the engine's module (one memory, one table), its adapter and two shims.
        var shape = StoreShape.Of(await File.ReadAllBytesAsync(await TestImages.EnsureComponentAsync("hello")));
        Assert.Equal(1, shape.Memories);
        Assert.Equal(2, shape.Tables);
        Assert.InRange(shape.Instances, 4, 100);
    }

    [Fact]
    public void The_limit_is_split_among_the_memories_after_a_sixteenth_for_the_tables()
    {
        var (memory, elements) = new StoreShape(3, 2, 1).Budget(48L << 20);
        Assert.Equal(((48L << 20) - (3L << 20)) / 3, memory);
        Assert.Equal((uint)((3L << 20) / 8 / 2), elements);
        Assert.Equal((null, null), new StoreShape(3, 2, 1).Budget(null));
        // A module of no memory still gets a sane budget.
        Assert.Equal((48L << 20) - (3L << 20), new StoreShape(0, 0, 1).Budget(48L << 20).MemorySize);
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x7f })]
    [InlineData(new byte[] { 0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01, 0x03, 0x00 })]
    [InlineData(new byte[] { 0x28, 0x6d, 0x6f, 0x64 })]
    public void Truncated_or_foreign_bytes_are_invalid_data(byte[] bytes) =>
        Assert.Throws<InvalidDataException>(() => StoreShape.Of(bytes));

    [Fact]
    public void Components_nested_past_the_bound_are_refused_not_followed()
    {
        byte[] component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        for (var i = 0; i < 40; i++)
        {
            // Section 4: a nested component, the previous one.
            var size = Leb(component.Length);
            component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x04, .. size, .. component];
        }
        Assert.Contains("nested", Assert.Throws<InvalidDataException>(() => StoreShape.Of(component)).Message);
    }

    private static byte[] Leb(int value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }
}
