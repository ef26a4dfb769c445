using Containerd.Shim.Wasm;
using Containerd.Types;
using Xunit;

namespace Shim.Tests;

/// <summary>Which wasm layer args[0] selects (<see cref="WasmLayerImage.Select"/>), without containerd.</summary>
public sealed class OciLayerSelectionTests
{
    private static ContentDescriptor Layer(string digest, string? title)
    {
        var layer = new ContentDescriptor { MediaType = WasmLayerImage.ComponentLayer, Digest = digest, Size = 1 };
        if (title is not null)
        {
            layer.Annotations[WasmLayerImage.TitleAnnotation] = title;
        }
        return layer;
    }

    [Fact]
    public void A_single_layer_runs_whatever_args0_says()
    {
        var only = Layer("sha256:aa", "wasi-demo-oci.wasm");

        Assert.Same(only, WasmLayerImage.Select([only], "anything.wasm"));
    }

    [Fact]
    public void Several_layers_are_selected_by_title_ignoring_a_leading_directory()
    {
        var a = Layer("sha256:aa", "a.wasm");
        var b = Layer("sha256:bb", "b.wasm");

        Assert.Same(b, WasmLayerImage.Select([a, b], "b.wasm"));
        Assert.Same(a, WasmLayerImage.Select([a, b], "/a.wasm"));
    }

    [Fact]
    public void An_unknown_name_is_not_found_and_lists_the_layers()
    {
        var a = Layer("sha256:aa", "a.wasm");
        var untitled = Layer("sha256:cc", null);

        var e = Assert.Throws<EntrypointException>(() => WasmLayerImage.Select([a, untitled], "nosuch.wasm"));

        Assert.Equal(EntrypointError.NotFound, e.Error);
        Assert.Contains("nosuch.wasm", e.Message);
        Assert.Contains("a.wasm", e.Message);
        Assert.Contains("sha256:cc", e.Message);
    }

    [Fact]
    public void Layer_titles_in_the_not_found_error_are_escaped_and_cut()
    {
        var layers = Enumerable.Range(0, 15).Select(i => Layer($"sha256:{i:x2}", $"t{i}-" + new string('z', 300))).ToList();
        layers.Insert(0, Layer("sha256:ee", "\u001b]8;;http://evil\u0007click\u001b]8;;\u0007.wasm"));

        var e = Assert.Throws<EntrypointException>(() => WasmLayerImage.Select(layers, "nosuch\u001b[1m.wasm"));

        Assert.Contains("none titled nosuch\\e[1m.wasm", e.Message);
        Assert.Contains("\\e]8;;http://evil\\x07click\\e]8;;\\x07.wasm", e.Message);
        Assert.DoesNotContain('\u001b', e.Message);
        Assert.DoesNotContain('\u0007', e.Message);
        Assert.Contains("and 6 more", e.Message);
        Assert.DoesNotContain(new string('z', 81), e.Message);
    }

    [Theory]
    [InlineData(WasmLayerImage.ComponentLayer, true)]
    [InlineData(WasmLayerImage.WasmLayer, true)]
    [InlineData("application/vnd.oci.image.layer.v1.tar+gzip", false)]
    public void Only_wasm_media_types_are_module_layers(string mediaType, bool expected) =>
        Assert.Equal(expected, WasmLayerImage.IsWasmLayer(mediaType));
}
