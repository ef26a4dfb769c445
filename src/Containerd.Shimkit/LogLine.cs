using System.Globalization;
using System.Text;

namespace Containerd.Shimkit;

/// <summary>Formats one log line the way logrus' text formatter does in containerd's shims.</summary>
internal static class LogLine
{
    /// <summary>Formats <c>time="…" level=… msg="…" [error="…"]</c> followed by a newline.</summary>
    public static string Format(DateTimeOffset time, string level, string msg, string? error)
    {
        var sb = new StringBuilder(64 + msg.Length);
        sb.Append("time=\"").Append(FormatTime(time)).Append("\" level=").Append(level).Append(" msg=");
        AppendQuoted(sb, msg);
        if (error is not null)
        {
            sb.Append(" error=");
            AppendQuoted(sb, error);
        }
        sb.Append('\n');
        return sb.ToString();
    }

    /// <summary>containerd's RFC3339NanoFixed layout (<c>2006-01-02T15:04:05.000000000Z07:00</c>) in UTC.</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        // .NET keeps 100 ns ticks: seven fraction digits, padded to Go's fixed nine.
        return time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z";
    }

    /// <summary>Quotes like Go's <c>%q</c>, which logrus uses for values.</summary>
    public static void AppendQuoted(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        sb.Append('"');
    }
}
