using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

public class KitSpecTests
{
    private const string Sample = """
        {
          "ociVersion": "1.1.0",
          "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0, "additionalGids": [10] },
            "args": ["/wasi-demo-app.wasm", "echo", "hello"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": { "bounding": ["CAP_KILL"] },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
          },
          "root": { "path": "rootfs", "readonly": true },
          "hostname": "demo",
          "mounts": [{ "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"] }],
          "annotations": { "io.kubernetes.cri.sandbox-id": "pod1" },
          "linux": {
            "cgroupsPath": "/default/demo",
            "resources": { "memory": { "limit": 1048576, "disableOOMKiller": false }, "cpu": { "shares": 1024, "quota": 50000, "period": 100000 }, "pids": { "limit": 16 } },
            "namespaces": [{ "type": "pid" }, { "type": "network", "path": "/proc/1/ns/net" }],
            "unknownField": { "ignored": true }
          }
        }
        """;

    [Fact]
    public void Parses_the_fields_a_shim_uses()
    {
        var spec = Spec.Parse(System.Text.Encoding.UTF8.GetBytes(Sample), "config.json");
        Assert.Equal("1.1.0", spec.OciVersion);
        Assert.False(spec.Process!.Terminal);
        Assert.Equal(["/wasi-demo-app.wasm", "echo", "hello"], spec.Process.Args);
        Assert.Equal([10u], spec.Process.User!.AdditionalGids);
        Assert.True(spec.Process.NoNewPrivileges);
        Assert.Equal(1024ul, spec.Process.Rlimits![0].Hard);
        Assert.Equal("rootfs", spec.Root!.Path);
        Assert.True(spec.Root.Readonly);
        Assert.Equal("/proc", spec.Mounts![0].Destination);
        Assert.Equal("pod1", spec.Annotations!["io.kubernetes.cri.sandbox-id"]);
        Assert.Equal("/default/demo", spec.Linux!.CgroupsPath);
        Assert.Equal(1048576, spec.Linux.Resources!.Memory!.Limit);
        Assert.False(spec.Linux.Resources.Memory.DisableOomKiller);
        Assert.Equal(50000, spec.Linux.Resources.Cpu!.Quota);
        Assert.Equal(16, spec.Linux.Resources.Pids!.Limit);
        Assert.Equal("/proc/1/ns/net", spec.Linux.Namespaces![1].Path);
    }

    [Fact]
    public void Load_reads_a_file()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Sample);
            Assert.Equal("demo", Spec.Load(path).Hostname);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_file_is_invalid_argument_naming_the_path()
    {
        var path = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "config.json");
        var e = Assert.Throws<ShimException>(() => Spec.Load(path));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("{\"process\": {\"args\": 5}}")]
    [InlineData("null")]
    [InlineData("")]
    public void Malformed_document_is_invalid_argument_naming_the_path(string json)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, json);
            var e = Assert.Throws<ShimException>(() => Spec.Load(path));
            Assert.Equal(StatusCode.InvalidArgument, e.Code);
            Assert.StartsWith(path + ": ", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
