using System.Text;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// A tenant's module and spec text reaches <c>ctr</c>'s terminal and containerd's log only as a short, escaped
/// excerpt: a text module full of secrets, a component whose export names carry terminal escapes, an args[0] of
/// hundreds of kilobytes. Each is refused at Create through containerd.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
public sealed class HostileTextTests(WasmShimFixture fx)
{
    [Fact]
    public async Task A_wat_module_of_secret_lines_fails_create_with_no_more_than_a_short_excerpt()
    {
        await using var container = await ConfigContainer.CreateAsync(fx, "wat-secret");
        var secret = "SECRET-" + new string('A', 300);
        var text = new StringBuilder("(module\n  (func (export \"_start\")\n");
        text.Append("    ").Append(secret).Append('\n');
        for (var i = 2; i <= 6; i++)
        {
            text.Append($"    SECRET-LINE-{i}-token-{Guid.NewGuid():N}\n");
        }
        text.Append("  ))\n");
        File.WriteAllText(Path.Combine(container.Rootfs, "secret.wat"), text.ToString());
        container.Process["args"] = new System.Text.Json.Nodes.JsonArray("/secret.wat");

        var result = await container.RunAsync();

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("invalid wat module", result.Stderr);
        var error = result.Stderr[result.Stderr.IndexOf("invalid wat module", StringComparison.Ordinal)..];
        var detail = error.Split('\n')[0];
        // At most the excerpt of one line: not the whole secret line, none of the others.
        Assert.DoesNotContain(new string('A', 121), result.Stderr);
        Assert.DoesNotContain("SECRET-LINE-", result.Stderr);
        Assert.True(detail.Length < 300, $"error detail of {detail.Length} characters: {detail}");
    }

    [Fact]
    public async Task Component_export_names_with_terminal_escapes_appear_escaped_and_the_list_is_cut()
    {
        await using var container = await ConfigContainer.CreateAsync(fx, "evil-exports");
        var evil = "evil\u001b[2J\u001b]0;pwned\u0007\u202ename";
        var exports = new List<string> { evil };
        exports.AddRange(Enumerable.Range(0, 40).Select(i => $"filler-{i}-" + new string('x', 200)));
        File.WriteAllBytes(Path.Combine(container.Rootfs, "evil.wasm"), WasmBinaryTests.Component([.. exports]));
        container.Process["args"] = new System.Text.Json.Nodes.JsonArray("/evil.wasm");

        var result = await container.RunAsync();

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("it exports: evil\\e[2J\\e]0;pwned\\x07\\u{202E}name", result.Stderr);
        Assert.DoesNotContain('\u001b', result.Stderr);
        Assert.DoesNotContain('\u0007', result.Stderr);
        Assert.DoesNotContain('\u202e', result.Stderr);
        Assert.Contains("and 31 more", result.Stderr);
        Assert.DoesNotContain("filler-39", result.Stderr);
        Assert.DoesNotContain(new string('x', 61), result.Stderr);
    }

    [Fact]
    public async Task A_huge_args0_with_escapes_is_cut_and_escaped_in_the_create_error()
    {
        await using var container = await ConfigContainer.CreateAsync(fx, "huge-name");
        var name = "/missing\u001b[31m-" + new string('n', 200_000) + ".wasm";
        container.Process["args"] = new System.Text.Json.Nodes.JsonArray(name);

        var result = await container.RunAsync();

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("entrypoint /missing\\e[31m-nnn", result.Stderr);
        Assert.DoesNotContain('\u001b', result.Stderr);
        Assert.True(result.Stderr.Length < 8192, $"stderr of {result.Stderr.Length} characters");
    }
}
