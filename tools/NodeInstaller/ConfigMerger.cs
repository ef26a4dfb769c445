using System.Text;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace NodeInstaller;

/// <summary>The outcome of merging a runtime handler into a containerd config.toml.</summary>
/// <param name="Text">The new file content (the input itself when nothing had to change).</param>
/// <param name="Changed">False when the file already had the entry exactly as asked.</param>
/// <param name="ConfigVersion">The config format version: 2 (containerd 1.6/1.7) or 3 (containerd 2.x).</param>
/// <param name="Table">The TOML table header of the runtime entry, e.g. <c>plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmtime</c>.</param>
public sealed record MergeResult(string Text, bool Changed, int ConfigVersion, string Table);

/// <summary>
/// Adds a CRI runtime handler (<c>runtimes.&lt;name&gt;.runtime_type</c>) to a containerd config.toml, editing the text
/// in place so that every other setting, comment and blank line stays as it was. The TOML syntax tree (Tomlyn) is
/// used to find the tables and values; the edits are splices into the original text, so a second run finds the entry
/// and returns the file byte for byte.
/// </summary>
public static class ConfigMerger
{
    /// <summary>The CRI plugin that owns the runtime handlers in a version 2 config (containerd 1.6 and 1.7).</summary>
    public const string CriPluginV2 = "io.containerd.grpc.v1.cri";

    /// <summary>The CRI runtime plugin that owns the runtime handlers in a version 3 config (containerd 2.x).</summary>
    public const string CriPluginV3 = "io.containerd.cri.v1.runtime";

    /// <summary>The runtime type containerd 1.x registers as its default handler "runc".</summary>
    public const string RuncRuntimeType = "io.containerd.runc.v2";

    /// <summary>Merges the handler <paramref name="runtimeName"/> → <paramref name="runtimeType"/> into <paramref name="text"/>.</summary>
    /// <param name="text">The current config.toml (may be empty).</param>
    /// <param name="runtimeName">The handler name a RuntimeClass names, e.g. "wasmtime".</param>
    /// <param name="runtimeType">The shim's runtime type, e.g. "io.containerd.wasmtime.v1".</param>
    /// <param name="containerdMajor">1 or 2 when known (required for a file without a version); null to go by the file.</param>
    /// <param name="sourceName">The file's name, for error messages.</param>
    /// <returns>The merged text and what was done.</returns>
    /// <exception cref="InstallerException">The file is not valid TOML, has an unsupported version, or defines the
    /// runtime table in a form this tool does not edit (an inline table or dotted keys).</exception>
    public static MergeResult Merge(string text, string runtimeName, string runtimeType, int? containerdMajor = null, string sourceName = "config.toml")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentException.ThrowIfNullOrEmpty(runtimeName);
        ArgumentException.ThrowIfNullOrEmpty(runtimeType);
        if (containerdMajor is not null and not (1 or 2))
        {
            throw new InstallerException($"unsupported containerd major version {containerdMajor}: use 1 (1.6, 1.7) or 2 (2.x)");
        }
        var doc = Parse(text, sourceName);
        var newline = text.Contains("\r\n", StringComparison.Ordinal) ? "\r\n" : "\n";

        var version = ReadVersion(doc, sourceName);
        var prefix = "";
        if (version is null)
        {
            if (doc.KeyValues.ChildrenCount > 0 || doc.Tables.ChildrenCount > 0)
            {
                throw new InstallerException(
                    $"{sourceName} has no 'version' key, so containerd reads it as a version 1 config, which this tool does not edit: " +
                    "convert it first with `containerd config migrate` (2.x) or add the settings to a version 2 file");
            }
            version = containerdMajor switch
            {
                1 => 2,
                2 => 3,
                _ => throw new InstallerException(
                    $"{sourceName} is empty, so it does not say which config format to write: pass --containerd-version (1.6, 1.7 or 2.x)"),
            };
            prefix = $"version = {version}{newline}";
        }
        if (version is not (2 or 3))
        {
            throw new InstallerException($"{sourceName} has version = {version}: only config versions 2 (containerd 1.6/1.7) and 3 (containerd 2.x) are supported");
        }
        if (version == 3 && containerdMajor == 1)
        {
            throw new InstallerException($"{sourceName} is a version 3 config, which containerd 1.x cannot read: it belongs to containerd 2.x");
        }

        var plugin = version == 2 ? CriPluginV2 : CriPluginV3;
        // Version 2 tables quote plugin ids with double quotes, version 3 (as `containerd config default` of 2.x prints them) with single ones.
        var q = version == 2 ? "\"" : "'";
        string[] runtimesPath = ["plugins", plugin, "containerd", "runtimes"];
        string[] entryPath = [.. runtimesPath, runtimeName];
        var header = $"plugins.{q}{plugin}{q}.containerd.runtimes.{KeyText(runtimeName)}";

        RefuseOtherForms(doc, entryPath, sourceName);

        var edits = new List<(int Offset, int Length, string Replacement)>();
        var table = FindTable(doc, entryPath);
        if (table is not null)
        {
            var current = table.Items.OfType<KeyValueSyntax>().FirstOrDefault(kv => KeyPath(kv.Key!).SequenceEqual(["runtime_type"]));
            if (current?.Value is StringValueSyntax s && s.Value == runtimeType)
            {
                return new MergeResult(text, Changed: false, (int)version.Value, header);
            }
            if (current is not null)
            {
                var span = current.Value!.Span;
                edits.Add((span.Start.Offset, span.End.Offset - span.Start.Offset + 1, Quote(runtimeType)));
            }
            else
            {
                var at = LineEnd(text, table.CloseBracket!.Span.End.Offset);
                var lead = at == text.Length && !text.EndsWith('\n') ? newline : "";
                edits.Add((at, 0, $"{lead}  runtime_type = {Quote(runtimeType)}{newline}"));
            }
        }
        else
        {
            var block = new StringBuilder();
            // containerd 1.x replaces its built-in runtime map with the runtime tables a file declares, and then refuses to
            // load CRI at all because its default handler "runc" is missing; so a version 2 file that declares no runtime
            // gets "runc" spelled out beside the new one. (2.x keeps its built-in runc.)
            var declaresRuntimes = doc.Tables.OfType<TableSyntax>().Any(t => IsUnder(KeyPath(t.Name!), runtimesPath));
            if (version == 2 && !declaresRuntimes && runtimeName != "runc")
            {
                block.Append(newline).Append("# containerd 1.x's default handler, spelled out: declaring any runtime replaces its built-in list.").Append(newline);
                block.Append($"[plugins.{q}{plugin}{q}.containerd.runtimes.runc]").Append(newline);
                block.Append($"  runtime_type = {Quote(RuncRuntimeType)}").Append(newline);
            }
            block.Append(newline).Append($"# Pods whose RuntimeClass has handler \"{runtimeName}\" run on {runtimeType} (added by containerd-wasm-install).").Append(newline);
            block.Append('[').Append(header).Append(']').Append(newline);
            block.Append($"  runtime_type = {Quote(runtimeType)}").Append(newline);
            var lead = text.Length > 0 && !text.EndsWith('\n') ? newline : "";
            var body = text.Trim().Length == 0 ? block.ToString().TrimStart('\r', '\n') : block.ToString();
            edits.Add((text.Length, 0, lead + body));
        }

        var merged = new StringBuilder(prefix).Append(Apply(text, edits)).ToString();
        var check = SyntaxParser.Parse(merged, sourceName, validate: true);
        if (check.HasErrors)
        {
            throw new InstallerException(
                $"adding [{header}] to {sourceName} would make it invalid TOML ({check.Diagnostics}); add the runtime by hand");
        }
        return new MergeResult(merged, Changed: true, (int)version.Value, header);
    }

    private static DocumentSyntax Parse(string text, string sourceName)
    {
        var doc = SyntaxParser.Parse(text, sourceName, validate: true);
        if (doc.HasErrors)
        {
            throw new InstallerException($"{sourceName} is not valid TOML: {doc.Diagnostics.ToString().Trim()}");
        }
        return doc;
    }

    private static long? ReadVersion(DocumentSyntax doc, string sourceName)
    {
        foreach (var kv in doc.KeyValues)
        {
            if (KeyPath(kv.Key!).SequenceEqual(["version"]))
            {
                return kv.Value is IntegerValueSyntax i
                    ? i.Value
                    : throw new InstallerException($"{sourceName}: 'version' must be an integer (2 or 3), found {kv.Value}");
            }
        }
        return null;
    }

    private static TableSyntax? FindTable(DocumentSyntax doc, string[] path) =>
        doc.Tables.OfType<TableSyntax>().FirstOrDefault(t => KeyPath(t.Name!).SequenceEqual(path));

    // The entry could also be spelled as dotted keys or an inline table inside a parent table; editing those safely
    // needs more than a splice, so such files are refused with the place to look.
    private static void RefuseOtherForms(DocumentSyntax doc, string[] entryPath, string sourceName)
    {
        IEnumerable<(string[] Table, SyntaxList<KeyValueSyntax> Items)> scopes =
            doc.Tables.OfType<TableSyntaxBase>().Select(t => (KeyPath(t.Name!), t.Items)).Prepend(([], doc.KeyValues));
        foreach (var (table, items) in scopes)
        {
            if (!IsUnder(entryPath, table) || table.Length == entryPath.Length)
            {
                continue;
            }
            foreach (var kv in items)
            {
                var full = table.Concat(KeyPath(kv.Key!)).ToArray();
                var overlap = Math.Min(full.Length, entryPath.Length);
                if (full.Take(overlap).SequenceEqual(entryPath.Take(overlap)))
                {
                    throw new InstallerException(
                        $"{sourceName} line {kv.Span.Start.Line + 1} defines {string.Join('.', full)} inside [{string.Join('.', table)}] " +
                        "(dotted keys or an inline table); write it as its own [table] section, or add the runtime by hand");
                }
            }
        }
    }

    private static bool IsUnder(string[] path, string[] parent) =>
        path.Length > parent.Length && path.Take(parent.Length).SequenceEqual(parent) || path.SequenceEqual(parent);

    /// <summary>The key names of a (possibly dotted, possibly quoted) TOML key, unquoted.</summary>
    private static string[] KeyPath(KeySyntax key)
    {
        var parts = new List<string> { KeyPart(key.Key!) };
        if (key.DotKeys is { } dots)
        {
            parts.AddRange(dots.Select(d => KeyPart(d.Key!)));
        }
        return [.. parts];
    }

    private static string KeyPart(BareKeyOrStringValueSyntax part) => part switch
    {
        BareKeySyntax bare => bare.Key!.Text!,
        StringValueSyntax quoted => quoted.Value!,
        _ => throw new InvalidOperationException($"unexpected TOML key syntax {part.Kind}"),
    };

    private static string KeyText(string name) => BareKeySyntax.IsBareKey(name) ? name : Quote(name);

    private static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    // The offset just past the end of the line holding `offset` (or the end of the text).
    private static int LineEnd(string text, int offset)
    {
        var nl = text.IndexOf('\n', Math.Min(offset, text.Length));
        return nl < 0 ? text.Length : nl + 1;
    }

    private static string Apply(string text, List<(int Offset, int Length, string Replacement)> edits)
    {
        var sb = new StringBuilder(text);
        foreach (var (offset, length, replacement) in edits.OrderByDescending(e => e.Offset))
        {
            sb.Remove(offset, length).Insert(offset, replacement);
        }
        return sb.ToString();
    }
}
