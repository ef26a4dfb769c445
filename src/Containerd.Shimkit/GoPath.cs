using System.Text;

namespace Containerd.Shimkit;

/// <summary>Go's <c>path/filepath</c> Join and Clean on Unix, so derived names match containerd byte for byte.</summary>
internal static class GoPath
{
    /// <summary>Joins the non-empty elements with '/' and cleans the result; "" when all are empty.</summary>
    public static string Join(params string[] elements)
    {
        var parts = elements.Where(e => e.Length > 0).ToArray();
        return parts.Length == 0 ? "" : Clean(string.Join('/', parts));
    }

    /// <summary>Lexical cleaning: collapse '//', drop '.', resolve '..' against earlier elements.</summary>
    public static string Clean(string path)
    {
        if (path.Length == 0)
        {
            return ".";
        }
        var rooted = path[0] == '/';
        var stack = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (stack.Count > 0 && stack[^1] != "..")
                {
                    stack.RemoveAt(stack.Count - 1);
                }
                else if (!rooted)
                {
                    stack.Add("..");
                }
                continue;
            }
            stack.Add(part);
        }
        var sb = new StringBuilder();
        if (rooted)
        {
            sb.Append('/');
        }
        sb.AppendJoin('/', stack);
        return sb.Length == 0 ? "." : sb.ToString();
    }
}
