namespace Stress;

/// <summary>What one stress run does.</summary>
public sealed record StressOptions
{
    /// <summary>What the tasks go through: <see cref="StressMode.Containerd"/> or <see cref="StressMode.Shim"/>.</summary>
    public StressMode Mode { get; init; } = StressMode.Containerd;

    /// <summary>Shim mode: the shim executable.</summary>
    public string? ShimPath { get; init; }

    /// <summary>Shim mode: the prepared root filesystem folder every task's spec points at.</summary>
    public string? Rootfs { get; init; }

    /// <summary>containerd's gRPC socket.</summary>
    public string Address { get; init; } = "/run/containerd/containerd.sock";

    /// <summary>The containerd namespace the containers live in.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>The runtime (shim) name containerd resolves, e.g. io.containerd.wasmtime.v1.</summary>
    public string Runtime { get; init; } = "io.containerd.wasmtime.v1";

    /// <summary>The image every container is made from; it must already be pulled/imported and unpacked.</summary>
    public string Image { get; init; } = "ghcr.io/containerd/runwasi/wasi-demo-app:latest";

    /// <summary>The snapshotter the image is unpacked into.</summary>
    public string Snapshotter { get; init; } = "overlayfs";

    /// <summary>The process arguments; empty takes the image's entrypoint and cmd.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>How many tasks to run.</summary>
    public int Count { get; init; } = 10;

    /// <summary>How many tasks run at once; 0 means all of them.</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>How long one task may take from create to delete before it counts as failed and is killed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where to write results in the benchmark-action JSON format, or null.</summary>
    public string? JsonOutput { get; init; }

    /// <summary>The prefix of every benchmark name in the JSON output.</summary>
    public string? BenchmarkName { get; init; }

    /// <summary>The prefix of every container id, so runs (and their leftovers) can be told apart.</summary>
    public string IdPrefix { get; init; } = "stress-" + Environment.ProcessId;
}
