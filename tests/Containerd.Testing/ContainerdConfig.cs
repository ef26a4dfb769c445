using System.Text;

namespace Containerd.Testing;

/// <summary>
/// Writes a containerd config.toml for a private instance: <c>version = 2</c> for 1.x, <c>version = 3</c> for 2.x,
/// every path under the fixture's folder, debug and metrics listeners off, CRI off unless asked for.
/// </summary>
public static class ContainerdConfig
{
    /// <summary>Renders the config for <paramref name="options"/> with the given folders and socket.</summary>
    /// <param name="options">What to enable.</param>
    /// <param name="rootDir">containerd's persistent root (content, snapshots, metadata).</param>
    /// <param name="stateDir">containerd's state folder (task bundles, runtime state).</param>
    /// <param name="address">The gRPC socket path; the ttrpc socket is this plus ".ttrpc".</param>
    /// <param name="workDir">The fixture's folder, for paths plugins would otherwise put under /opt or /etc.</param>
    /// <returns>The TOML text.</returns>
    public static string Render(ContainerdOptions options, string rootDir, string stateDir, string address, string workDir)
    {
        var v2 = options.IsV2;
        var sb = new StringBuilder();
        sb.AppendLine($"version = {(v2 ? 3 : 2)}");
        sb.AppendLine($"root = {Quote(rootDir)}");
        sb.AppendLine($"state = {Quote(stateDir)}");

        // NRI listens on a machine-wide socket (/var/run/nri) that parallel instances would fight over.
        var disabled = new List<string> { "io.containerd.nri.v1.nri" };
        if (!options.EnableCri)
        {
            disabled.Add("io.containerd.grpc.v1.cri");
            if (v2)
            {
                // 2.x split CRI into several plugins; they only matter to the CRI service. (The sandbox-controllers
                // service then logs that it has no podsandbox controller: harmless without CRI.)
                disabled.Add("io.containerd.cri.v1.runtime");
                disabled.Add("io.containerd.cri.v1.images");
                disabled.Add("io.containerd.podsandbox.controller.v1.podsandbox");
            }
        }
        sb.AppendLine($"disabled_plugins = [{string.Join(", ", disabled.Select(Quote))}]");
        sb.AppendLine();
        sb.AppendLine("[grpc]");
        sb.AppendLine($"  address = {Quote(address)}");
        sb.AppendLine("[ttrpc]");
        sb.AppendLine($"  address = {Quote(address + ".ttrpc")}");
        sb.AppendLine("[debug]");
        sb.AppendLine("  address = \"\"");
        sb.AppendLine($"  level = {Quote(options.LogLevel)}");
        sb.AppendLine("[metrics]");
        sb.AppendLine("  address = \"\"");
        sb.AppendLine();

        var p = v2 ? "'" : "\"";
        string Table(string id) => $"[plugins.{p}{id}{p}]";

        // The opt plugin otherwise creates /opt/containerd on the host.
        sb.AppendLine(Table("io.containerd.internal.v1.opt"));
        sb.AppendLine($"  path = {Quote(Path.Combine(workDir, "opt"))}");

        if (options.EnableCri)
        {
            AppendCri(sb, options, workDir, Table);
        }

        if (!string.IsNullOrWhiteSpace(options.ExtraConfig))
        {
            sb.AppendLine();
            sb.AppendLine(options.ExtraConfig);
        }
        return sb.ToString();
    }

    private static void AppendCri(StringBuilder sb, ContainerdOptions options, string workDir, Func<string, string> table)
    {
        var cniConf = Path.Combine(workDir, "cni", "net.d");
        string runtimesPrefix;
        if (options.IsV2)
        {
            sb.AppendLine(table("io.containerd.cri.v1.images"));
            sb.AppendLine("  snapshotter = \"overlayfs\"");
            sb.AppendLine("[plugins.'io.containerd.cri.v1.images'.pinned_images]");
            sb.AppendLine($"  sandbox = {Quote(options.SandboxImage)}");
            sb.AppendLine(table("io.containerd.cri.v1.runtime"));
            sb.AppendLine("  restrict_oom_score_adj = true");
            sb.AppendLine("[plugins.'io.containerd.cri.v1.runtime'.cni]");
            sb.AppendLine("  bin_dir = \"/usr/lib/cni\"");
            sb.AppendLine($"  conf_dir = {Quote(cniConf)}");
            runtimesPrefix = "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes";
        }
        else
        {
            sb.AppendLine(table("io.containerd.grpc.v1.cri"));
            sb.AppendLine($"  sandbox_image = {Quote(options.SandboxImage)}");
            sb.AppendLine("  restrict_oom_score_adj = true");
            sb.AppendLine("[plugins.\"io.containerd.grpc.v1.cri\".containerd]");
            sb.AppendLine("  snapshotter = \"overlayfs\"");
            sb.AppendLine("[plugins.\"io.containerd.grpc.v1.cri\".cni]");
            sb.AppendLine("  bin_dir = \"/usr/lib/cni\"");
            sb.AppendLine($"  conf_dir = {Quote(cniConf)}");
            runtimesPrefix = "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes";
        }
        // Declaring any runtime table replaces 1.x's built-in map, which then lacks the default "runc" handler.
        var runtimes = options.CriRuntimes.ContainsKey("runc")
            ? options.CriRuntimes
            : options.CriRuntimes.Prepend(new KeyValuePair<string, string>("runc", "io.containerd.runc.v2"));
        foreach (var (name, runtimeType) in runtimes)
        {
            sb.AppendLine($"[{runtimesPrefix}.{Quote(name)}]");
            sb.AppendLine($"  runtime_type = {Quote(runtimeType)}");
        }
    }

    private static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
