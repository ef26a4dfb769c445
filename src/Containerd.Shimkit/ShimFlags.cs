namespace Containerd.Shimkit;

/// <summary>
/// The command line containerd gives a shim: <c>-namespace N -address A -publish-binary B -id I [-debug]
/// [-bundle D] start|delete</c>, or <c>-v</c> / <c>-info</c>. Parsed like Go's flag package
/// (<c>-flag value</c>, <c>-flag=value</c>, one or two dashes).
/// </summary>
internal sealed class ShimFlags
{
    public string Namespace { get; private set; } = "";
    public string Address { get; private set; } = "";
    public string PublishBinary { get; private set; } = "";
    public string Id { get; private set; } = "";
    public string Bundle { get; private set; } = "";
    public string Socket { get; private set; } = "";
    public bool Debug { get; private set; }
    public bool Version { get; private set; }
    public bool Info { get; private set; }

    /// <summary>The action after the flags: <c>start</c>, <c>delete</c>, or empty to serve.</summary>
    public string Action { get; private set; } = "";

    /// <summary>Flags this parser did not know, kept so that re-executing the shim passes them on.</summary>
    public List<string> Unknown { get; } = [];

    public static ShimFlags Parse(IReadOnlyList<string> args)
    {
        var flags = new ShimFlags();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg.Length < 2 || arg[0] != '-')
            {
                flags.Action = arg;
                continue;
            }
            var name = arg.TrimStart('-');
            string? inline = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                inline = name[(eq + 1)..];
                name = name[..eq];
            }
            switch (name)
            {
                case "debug": flags.Debug = ParseBool(inline); break;
                case "v": flags.Version = ParseBool(inline); break;
                case "info": flags.Info = ParseBool(inline); break;
                case "namespace": flags.Namespace = Value(args, ref i, inline, name); break;
                case "address": flags.Address = Value(args, ref i, inline, name); break;
                case "publish-binary": flags.PublishBinary = Value(args, ref i, inline, name); break;
                case "id": flags.Id = Value(args, ref i, inline, name); break;
                case "bundle": flags.Bundle = Value(args, ref i, inline, name); break;
                case "socket": flags.Socket = Value(args, ref i, inline, name); break;
                default: flags.Unknown.Add(arg); break;
            }
        }
        return flags;
    }

    /// <summary>The flags to re-execute the shim with as its server: the same, minus the action.</summary>
    public List<string> ServeArgs()
    {
        var args = new List<string> { "-namespace", Namespace, "-id", Id, "-address", Address };
        if (PublishBinary.Length > 0)
        {
            args.AddRange(["-publish-binary", PublishBinary]);
        }
        if (Bundle.Length > 0)
        {
            args.AddRange(["-bundle", Bundle]);
        }
        if (Debug)
        {
            args.Add("-debug");
        }
        args.AddRange(Unknown);
        return args;
    }

    private static bool ParseBool(string? inline) => inline is null || inline is "true" or "1" or "t" or "T" or "TRUE" or "True";

    private static string Value(IReadOnlyList<string> args, ref int i, string? inline, string name)
    {
        if (inline is not null)
        {
            return inline;
        }
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"flag needs an argument: -{name}");
        }
        return args[++i];
    }
}
