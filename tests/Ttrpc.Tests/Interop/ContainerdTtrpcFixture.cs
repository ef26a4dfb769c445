using Containerd.Testing;

namespace Ttrpc.Tests.Interop;

/// <summary>A private containerd for the interop tests (xunit needs a single public constructor).</summary>
public sealed class ContainerdTtrpcFixture : ContainerdFixture
{
    /// <summary>Options from the environment (CONTAINERD_VERSION), as every harness test uses.</summary>
    public ContainerdTtrpcFixture()
        : base(new ContainerdOptions())
    {
    }
}
