namespace Containerd.Shimkit.Tasks;

/// <summary>What the Task service knows about the shim it runs in (from its flags and environment).</summary>
public sealed class TaskServiceOptions
{
    /// <summary>The shim's identity (its version is reported by Connect).</summary>
    public required ShimInfo Info { get; init; }

    /// <summary>The <c>-namespace</c> flag: used when a request carries no namespace metadata.</summary>
    public required string DefaultNamespace { get; init; }

    /// <summary>containerd's gRPC address (<c>-address</c>).</summary>
    public required string ContainerdAddress { get; init; }

    /// <summary>containerd's ttrpc address (<c>TTRPC_ADDRESS</c>).</summary>
    public required string TtrpcAddress { get; init; }

    /// <summary>Called once Shutdown is accepted (no task remains); the shim then stops serving and exits.</summary>
    public Action? OnShutdown { get; init; }
}
