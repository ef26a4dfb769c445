namespace Containerd.Shimkit;

/// <summary>
/// Optional on an <see cref="IInstanceFactory"/>: releases what an instance left outside its bundle when the shim that
/// ran it died (containerd then runs the shim binary's <c>delete</c> action). The kit has already killed the task's
/// process; the rootfs is unmounted after this call.
/// </summary>
public interface IOrphanCleanup
{
    /// <summary>Cleans up container <paramref name="id"/> of namespace <paramref name="ns"/>; never throws.</summary>
    void CleanupOrphan(string ns, string id, string bundle);
}
