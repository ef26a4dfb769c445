namespace Ttrpc.Tests.Robustness;

/// <summary>
/// Tests that count /proc/self/fd and threads must not run beside other tests, whose
/// sockets and threads would be counted too.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResourceCountingCollection
{
    public const string Name = "resource counting";
}
