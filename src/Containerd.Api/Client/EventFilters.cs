namespace Containerd.Api.Client;

/// <summary>
/// Builders for containerd filter expressions used by event subscriptions.
/// A subscription with several filters receives events matching any of them.
/// </summary>
public static class EventFilters
{
    /// <summary>Matches events published on exactly <paramref name="topic"/>, e.g. <c>/tasks/exit</c>.</summary>
    public static string Topic(string topic) => $"topic=={Quote(topic)}";

    /// <summary>Matches every topic under <paramref name="prefix"/>, e.g. <c>/tasks/</c>.</summary>
    public static string TopicPrefix(string prefix) => $"topic~={Quote("^" + EscapeRegex(prefix))}";

    /// <summary>Matches events published in <paramref name="namespace"/>.</summary>
    public static string Namespace(string @namespace) => $"namespace=={Quote(@namespace)}";

    /// <summary>Matches events that match every one of <paramref name="filters"/> (containerd joins conjuncts with commas).</summary>
    public static string All(params string[] filters) => string.Join(',', filters);

    // Topics contain '/', which containerd's filter grammar only accepts inside a quoted value.
    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string EscapeRegex(string value) => System.Text.RegularExpressions.Regex.Escape(value);
}
