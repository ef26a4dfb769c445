namespace Containerd.Shimkit;

/// <summary>The entry point of every shim binary: implements containerd's runtime v2 shim contract.</summary>
public static class ShimMain
{
    /// <summary>
    /// Runs the shim: <c>start</c>, <c>delete</c>, <c>-v</c>, <c>-info</c> or (no action) the long-lived ttrpc server.
    /// Returns the process exit code.
    /// </summary>
    public static int Run(ShimInfo info, IInstanceFactory factory, string[] args)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(args);
        throw new NotImplementedException("shim entry point is being written");
    }
}
