using Containerd.Shim.Wasmtime.Http;
using Xunit;

namespace Shim.Tests;

/// <summary>The wasi:http host's per-request resource table is bounded; dropping handles makes room again.</summary>
public sealed class ResourceTableTests
{
    [Fact]
    public void A_guest_holding_the_most_resources_cannot_add_another_until_it_drops_one()
    {
        var table = new ResourceTable();
        uint last = 0;
        for (var i = 0; i < ResourceTable.MaxLive; i++)
        {
            last = table.Add(new object());
        }
        var refused = Assert.Throws<InvalidOperationException>(() => table.Add(new object()));
        Assert.Contains("65536 host resources", refused.Message);
        table.Drop(last);
        Assert.NotEqual(0u, table.Add(new object()));
    }
}
