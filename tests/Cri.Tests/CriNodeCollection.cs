using Xunit;

namespace Cri.Tests;

/// <summary>
/// The pod tests run one at a time: every CRI containerd uses the namespace k8s.io, and runc keeps its state in
/// /run/containerd/runc/&lt;namespace&gt;, so two nodes at once would share (and one teardown would remove) that folder.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CriNodeCollection
{
    public const string Name = "CRI node";
}
