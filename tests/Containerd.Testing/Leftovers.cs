namespace Containerd.Testing;

/// <summary>What a private containerd left on the host after teardown: it should all be empty.</summary>
/// <param name="Processes">Live processes that reference the fixture (pid and command line).</param>
/// <param name="Mounts">Mount points below the fixture's folder.</param>
/// <param name="Paths">Files or folders that should be gone (the fixture folder, runc state, cgroups, shim sockets).</param>
public sealed record Leftovers(IReadOnlyList<string> Processes, IReadOnlyList<string> Mounts, IReadOnlyList<string> Paths)
{
    /// <summary>True when nothing was left behind.</summary>
    public bool IsEmpty => Processes.Count == 0 && Mounts.Count == 0 && Paths.Count == 0;

    /// <summary>A readable list, for assertion messages.</summary>
    public override string ToString() =>
        IsEmpty
            ? "nothing left behind"
            : string.Join('\n',
                Processes.Select(p => "process: " + p)
                    .Concat(Mounts.Select(m => "mount: " + m))
                    .Concat(Paths.Select(p => "path: " + p)));
}
