namespace Stress;

/// <summary>What a run drives.</summary>
public enum StressMode
{
    /// <summary>A real containerd through its gRPC API, as ctr does; it launches the shims.</summary>
    Containerd,

    /// <summary>A shim binary directly, with a mock of containerd's event endpoint: the shim alone.</summary>
    Shim,
}
