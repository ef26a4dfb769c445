using Containerd.Shimkit;
using Xunit;

namespace Shim.Tests;

/// <summary>Tenant text made safe for error messages: escaped, one line, short.</summary>
public sealed class KitUntrustedTextTests
{
    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("two\nlines\r\tand a tab", "two\\nlines\\r\\tand a tab")]
    [InlineData("\u001b[31mred\u001b[0m", "\\e[31mred\\e[0m")]
    [InlineData("bell\u0007 del\u007f nul\0", "bell\\x07 del\\x7f nul\\x00")]
    [InlineData("c1 \u009b31m", "c1 \\x9b31m")]
    [InlineData("rtl \u202e gnp.exe", "rtl \\u{202E} gnp.exe")]
    [InlineData("zero\u200bwidth", "zero\\u{200B}width")]
    [InlineData("ünïcödé 名前 \U0001F600", "ünïcödé 名前 \U0001F600")]
    [InlineData("back\\slash", "back\\slash")]
    public void Non_printable_characters_are_escaped(string text, string expected) =>
        Assert.Equal(expected, UntrustedText.Excerpt(text));

    [Fact]
    public void A_lone_surrogate_is_escaped()
    {
        var text = "lone " + (char)0xd800 + " surrogate";
        Assert.Equal("lone \\u{D800} surrogate", UntrustedText.Excerpt(text));
    }

    [Fact]
    public void Escaping_twice_changes_nothing()
    {
        var once = UntrustedText.Excerpt("\u001b[2J\n\u202e");
        Assert.Equal(once, UntrustedText.Excerpt(once));
    }

    [Fact]
    public void Long_text_is_cut_to_the_excerpt_length_and_says_how_long_it_was()
    {
        var excerpt = UntrustedText.Excerpt(new string('a', 1000));

        Assert.StartsWith(new string('a', UntrustedText.ExcerptLength) + "… (1000 characters)", excerpt);
        Assert.DoesNotContain(new string('a', UntrustedText.ExcerptLength + 1), excerpt);
    }

    [Fact]
    public void An_escape_is_never_cut_in_half()
    {
        var excerpt = UntrustedText.Excerpt(new string('a', 118) + "\u001b\u001b", 120);

        Assert.Equal(new string('a', 118) + "\\e… (120 characters)", excerpt);
    }

    [Fact]
    public void A_list_shows_its_first_items_each_cut()
    {
        var items = Enumerable.Range(0, 13).Select(i => $"item{i}-" + new string('x', 100)).ToList();

        var list = UntrustedText.List(items, itemLength: 20);

        Assert.StartsWith("item0-xxxxxxxxxxxxxx… (106 characters), item1-", list);
        Assert.EndsWith(" and 3 more", list);
        Assert.DoesNotContain("item10", list);
        Assert.Equal("none", UntrustedText.List([]));
    }
}
