using System.Security.Cryptography;
using System.Text.Json;

namespace Containerd.Testing;

// CNI for CRI pods: one bridge network per fixture, so parallel fixtures never share a bridge, a subnet or IPAM state.
public partial class ContainerdFixture
{
    private string? _cniBridgeName;
    private string? _cniSubnet;

    /// <summary>
    /// A folder on containerd's PATH ahead of everything else when it exists before containerd starts: where a
    /// <see cref="ContainerdOptions.BeforeStart"/> hook installs shims the way a node installer would.
    /// </summary>
    public string NodeBinDir => Path.Combine(WorkDir, "bin");

    /// <summary>The CNI network config folder CRI reads (empty unless <see cref="ContainerdOptions.CniBridge"/> is set).</summary>
    public string CniConfDir => Path.Combine(WorkDir, "cni", "net.d");

    /// <summary>The Linux bridge this fixture's CNI network uses (e.g. <c>cni-1a2b3c4d</c>), or null without <see cref="ContainerdOptions.CniBridge"/>.</summary>
    public string? CniBridgeName => _cniBridgeName;

    /// <summary>The pods' subnet (a /24 in 10.200.0.0/13), or null without <see cref="ContainerdOptions.CniBridge"/>.</summary>
    public string? CniSubnet => _cniSubnet;

    private async Task WriteCniBridgeConfigAsync(CancellationToken cancellationToken)
    {
        var random = RandomNumberGenerator.GetBytes(2);
        _cniBridgeName = "cni-" + Path.GetFileName(WorkDir)["ctrd-".Length..];
        _cniSubnet = $"10.{200 + random[0] % 8}.{random[1]}.0/24";
        var network = new Dictionary<string, object>
        {
            ["cniVersion"] = "0.4.0",
            ["name"] = Path.GetFileName(WorkDir),
            ["plugins"] = new object[]
            {
                new Dictionary<string, object>
                {
                    ["type"] = "bridge",
                    ["bridge"] = _cniBridgeName,
                    // The bridge gets the gateway address, so the host routes to the pods' subnet through it.
                    ["isGateway"] = true,
                    // Masquerading needs iptables, which pods reached from the host do not need.
                    ["ipMasq"] = false,
                    ["ipam"] = new Dictionary<string, object>
                    {
                        ["type"] = "host-local",
                        ["ranges"] = new object[] { new object[] { new Dictionary<string, string> { ["subnet"] = _cniSubnet } } },
                        // Leases stay in the fixture's folder rather than /var/lib/cni/networks.
                        ["dataDir"] = Path.Combine(WorkDir, "cni", "ipam"),
                    },
                },
            },
        };
        Directory.CreateDirectory(CniConfDir);
        await File.WriteAllTextAsync(
            Path.Combine(CniConfDir, "10-bridge.conflist"),
            JsonSerializer.Serialize(network, new JsonSerializerOptions { WriteIndented = true }),
            cancellationToken).ConfigureAwait(false);
    }

    // libcni caches each attachment's result as <network>-<container>-<ifname> (and CRI's loopback network as
    // cni-loopback-<container>-lo) until the pod's network is torn down, which a killed pod never gets.
    private const string CniResultsDir = "/var/lib/cni/results";

    private IEnumerable<string> CniCacheFiles()
    {
        if (_cniBridgeName is null || !Directory.Exists(CniResultsDir))
        {
            return [];
        }
        var network = Path.GetFileName(WorkDir);
        var ours = Directory.EnumerateFiles(CniResultsDir, network + "-*").ToList();
        var sandboxes = ours.Select(f => Path.GetFileName(f)[(network.Length + 1)..]).Select(rest => rest[..rest.LastIndexOf('-')]);
        return ours.Concat(sandboxes.Select(id => Path.Combine(CniResultsDir, $"cni-loopback-{id}-lo")).Where(File.Exists)).ToList();
    }

    // The bridge plugin creates the bridge on the first pod and never deletes it.
    private async Task RemoveCniBridgeAsync()
    {
        foreach (var file in CniCacheFiles())
        {
            File.Delete(file);
        }
        if (_cniBridgeName is { } bridge && Directory.Exists(Path.Combine("/sys/class/net", bridge)))
        {
            var ip = File.Exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip";
            var result = await ProcessRunner.RunAsync(ip, ["link", "delete", bridge], timeout: TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                _teardownProblems.Add($"delete bridge {bridge}: {result.Stderr.Trim()}");
            }
        }
    }
}
