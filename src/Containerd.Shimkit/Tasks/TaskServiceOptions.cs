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

    /// <summary>The bundle containerd runs <c>shim delete</c> in once this service's connection closes, or null.
    /// When set, an accepted Shutdown (no task left, so the Task API cleaned everything) leaves a marker there first,
    /// and a shim executable that links the wasm layer's native constructor answers that <c>delete</c> before .NET
    /// starts.</summary>
    public string? CleanShutdownBundle { get; init; }
}
