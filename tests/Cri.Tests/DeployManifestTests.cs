using k8s;
using k8s.Models;
using Xunit;

namespace Cri.Tests;

/// <summary>
/// The manifests in deploy/, checked offline against the typed Kubernetes models (no API server here for a dry run):
/// each file deserializes strictly (an unknown or misspelt field fails) and carries the fields that make it work.
/// </summary>
public sealed class DeployManifestTests
{
    private static string Manifest(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "deploy", name));

    [Fact]
    public void RuntimeClass_maps_the_wasmtime_handler()
    {
        var rc = KubernetesYaml.Deserialize<V1RuntimeClass>(Manifest("runtimeclass.yaml"), strict: true);

        Assert.Equal(("node.k8s.io/v1", "RuntimeClass"), (rc.ApiVersion, rc.Kind));
        Assert.Equal("wasmtime", rc.Metadata.Name);
        // The handler is the runtime name the installer writes into containerd's config.
        Assert.Equal(new NodeInstaller.InstallOptions { ConfigPath = "", SourceDir = "" }.RuntimeName, rc.Handler);
    }

    [Fact]
    public void Demo_deployment_runs_the_demo_module_under_the_runtime_class()
    {
        var d = KubernetesYaml.Deserialize<V1Deployment>(Manifest("demo-deployment.yaml"), strict: true);

        Assert.Equal(("apps/v1", "Deployment"), (d.ApiVersion, d.Kind));
        Assert.Equal(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels);
        Assert.Equal("wasmtime", d.Spec.Template.Spec.RuntimeClassName);
        var c = Assert.Single(d.Spec.Template.Spec.Containers);
        Assert.Equal(ImageBuilder.KnownImages.DemoName, c.Image);
        Assert.Equal("IfNotPresent", c.ImagePullPolicy);
        Assert.Equal(["/wasi-demo-app.wasm"], c.Command);
        Assert.Equal(["daemon"], c.Args);
    }

    [Fact]
    public void Installer_daemonset_mounts_the_config_and_bin_dirs_it_writes_to()
    {
        var ds = KubernetesYaml.Deserialize<V1DaemonSet>(Manifest("installer-daemonset.yaml"), strict: true);

        Assert.Equal(("apps/v1", "DaemonSet"), (ds.ApiVersion, ds.Kind));
        Assert.Equal(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Metadata.Labels);
        var pod = ds.Spec.Template.Spec;
        Assert.Equal("linux", pod.NodeSelector["kubernetes.io/os"]);
        var install = Assert.Single(pod.InitContainers);
        Assert.EndsWith("containerd-wasm-install", install.Command[0]);
        var volumes = pod.Volumes.ToDictionary(v => v.Name, v => v.HostPath.Path);
        var mounts = install.VolumeMounts.ToDictionary(m => m.MountPath, m => volumes[m.Name]);
        // Every path the installer is told to write lies in a mount of the matching host folder.
        var args = install.Args.Select(a => a.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);
        Assert.Equal("/etc/containerd", HostPathOf(args["--config"], mounts));
        Assert.Equal("/usr/local/bin", HostPathOf(args["--bin-dir"], mounts));
        Assert.Single(pod.Containers);
    }

    [Fact]
    public void Unknown_fields_are_rejected()
    {
        var misspelt = Manifest("runtimeclass.yaml").Replace("handler:", "handlr:", StringComparison.Ordinal);

        var e = Assert.ThrowsAny<Exception>(() => KubernetesYaml.Deserialize<V1RuntimeClass>(misspelt, strict: true));
        Assert.Contains("handlr", e.ToString());
    }

    [Fact]
    public void Every_yaml_file_in_deploy_is_checked_here()
    {
        var files = Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "deploy"), "*.yaml").Select(Path.GetFileName).Order();

        Assert.Equal(["demo-deployment.yaml", "installer-daemonset.yaml", "runtimeclass.yaml"], files);
    }

    // The host folder a container path is in, with the rest of the path, e.g. /host/etc/containerd/config.toml → /etc/containerd.
    private static string HostPathOf(string containerPath, Dictionary<string, string> mounts)
    {
        var mount = mounts.Keys.Single(m => containerPath == m || containerPath.StartsWith(m + "/", StringComparison.Ordinal));
        return mounts[mount];
    }
}
