using Containerd.Testing;

namespace Foundation.Tests;

/// <summary>
/// One private containerd shared by the client tests. xunit constructs class fixtures only
/// through a single public constructor, which the harness's fixture (with two) does not offer.
/// </summary>
public sealed class ContainerdClientFixture : ContainerdFixture
{
    /// <summary>Options from the environment (CONTAINERD_VERSION), as every harness test uses.</summary>
    public ContainerdClientFixture() : base(new ContainerdOptions())
    {
    }
}
