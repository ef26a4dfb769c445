namespace Containerd.Shim.Wasm;

/// <summary>
/// The capability sets a container's process ends up with. runc sets the spec's sets and then calls execve, and the
/// kernel recomputes them there (capabilities(7), "Transformation of capabilities during execve()"); an instance
/// process runs its guest without an execve, so the same transformation is applied here, by hand, for a program file
/// with no file capabilities:
/// <list type="bullet">
/// <item>a non-root user keeps only its ambient set, as permitted and effective;</item>
/// <item>root gets its inheritable and bounding sets as permitted and effective, and with <c>noNewPrivileges</c> no
/// more than the permitted set it had.</item>
/// </list>
/// The constructor first sets the spec's own effective and permitted sets (so the kernel checks the ambient set
/// against them, as it does for runc), raises the ambient set, then sets the result.
/// </summary>
/// <param name="Bounding">The bounding set.</param>
/// <param name="Effective">The effective set the guest runs with.</param>
/// <param name="Permitted">The permitted set the guest runs with.</param>
/// <param name="Inheritable">The inheritable set.</param>
/// <param name="Ambient">The ambient set.</param>
/// <param name="RaiseEffective">The effective set while the ambient set is raised (the spec's).</param>
/// <param name="RaisePermitted">The permitted set while the ambient set is raised (the spec's).</param>
internal readonly record struct Capabilities(
    ulong Bounding, ulong Effective, ulong Permitted, ulong Inheritable, ulong Ambient, ulong RaiseEffective, ulong RaisePermitted)
{
    /// <summary>The sets after the execve runc would have made, from the spec's sets (bit masks).</summary>
    public static Capabilities AfterExec(ulong bounding, ulong effective, ulong permitted, ulong inheritable, ulong ambient,
        bool root, bool noNewPrivileges)
    {
        if (root)
        {
            // For uid 0 the kernel treats the file's inheritable and permitted sets as full, and its effective bit as set.
            var result = inheritable | bounding;
            if (noNewPrivileges)
            {
                result &= permitted;
            }
            return new Capabilities(bounding, result, result, inheritable, ambient & result, result, result);
        }
        return new Capabilities(bounding, ambient, ambient, inheritable, ambient, effective, permitted);
    }
}
