namespace Containerd.Shimkit;

/// <summary>Creates instances: the single embedding point of the kit.</summary>
public interface IInstanceFactory
{
    /// <summary>
    /// Validates the container and prepares it: on return the process exists (<see cref="IInstance.Pid"/>) but
    /// the program has not run. Bad input throws <see cref="ShimException"/> with a gRPC code and a message naming
    /// the offending thing and the reason. The instance takes ownership of the stdio handles in
    /// <paramref name="config"/> only when this method returns successfully.
    /// </summary>
    Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct);
}
