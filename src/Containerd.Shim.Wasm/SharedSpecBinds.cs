namespace Containerd.Shim.Wasm;

/// <summary>
/// What <see cref="SharedSpecPolicy.Apply"/> made of a spec: whether the rootfs is read-only, and the bind mounts as
/// preopens, each holding a descriptor of its source opened at Create. <see cref="RuntimeContext.FromSharedSpec"/>
/// takes the descriptors over; until then, disposing this closes them.
/// </summary>
public sealed class SharedSpecBinds : IDisposable
{
    private List<WasiPreopen>? _binds;

    internal SharedSpecBinds(bool readOnlyRoot, List<WasiPreopen> binds)
    {
        ReadOnlyRoot = readOnlyRoot;
        _binds = binds;
    }

    /// <summary><c>root.readonly</c>: every preopen inside the rootfs is read-only.</summary>
    public bool ReadOnlyRoot { get; }

    /// <summary>The bind mounts, in spec order, as preopens at their destinations.</summary>
    public IReadOnlyList<WasiPreopen> Binds => _binds ?? [];

    /// <summary>Hands the preopens over to their new owner; this no longer closes them.</summary>
    internal List<WasiPreopen> Take()
    {
        var binds = _binds ?? [];
        _binds = null;
        return binds;
    }

    /// <summary>Closes the descriptors not yet taken over.</summary>
    public void Dispose() => WasiPreopens.Close(Take());
}
