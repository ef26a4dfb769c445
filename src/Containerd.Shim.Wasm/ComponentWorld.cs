namespace Containerd.Shim.Wasm;

/// <summary>What a component is for, decided by the interfaces it exports.</summary>
public enum ComponentKind
{
    /// <summary>Exports <c>wasi:cli/run</c>: a command, run once like a preview 1 <c>_start</c>.</summary>
    Command,

    /// <summary>Exports <c>wasi:http/incoming-handler</c> (and not <c>wasi:cli/run</c>): serves HTTP requests.</summary>
    HttpProxy,
}

/// <summary>
/// Classifies a component by its exports. WASI interface names carry a version (<c>wasi:cli/run@0.2.12</c>); any
/// 0.2.x version matches, and the exact name found is what the engine then looks the function up by.
/// </summary>
public static class ComponentWorld
{
    /// <summary>The command interface, without its version.</summary>
    public const string RunInterface = "wasi:cli/run";

    /// <summary>The HTTP handler interface, without its version.</summary>
    public const string IncomingHandlerInterface = "wasi:http/incoming-handler";

    /// <summary>
    /// The kind of a component with <paramref name="exports"/> and the exact export name that makes it so. A
    /// component exporting both runs as a command, as <c>wasmtime run</c> does. Throws
    /// <see cref="EntrypointException"/> (<see cref="EntrypointError.NoSuchFunction"/>) naming the exports when it is
    /// neither.
    /// </summary>
    public static (ComponentKind Kind, string Export) Classify(string name, IReadOnlyList<string> exports)
    {
        if (Find(exports, RunInterface) is { } run)
        {
            return (ComponentKind.Command, run);
        }
        if (Find(exports, IncomingHandlerInterface) is { } handler)
        {
            return (ComponentKind.HttpProxy, handler);
        }
        // Export names are the component's own text: escaped and cut.
        var list = Containerd.Shimkit.UntrustedText.List(exports);
        throw new EntrypointException(EntrypointError.NoSuchFunction, name,
            $"component is neither a wasi:cli/command (no {RunInterface} export) nor a wasi:http/proxy " +
            $"(no {IncomingHandlerInterface} export); it exports: {list}");
    }

    private static string? Find(IReadOnlyList<string> exports, string iface) =>
        exports.FirstOrDefault(e => e == iface || e.StartsWith(iface + "@0.2.", StringComparison.Ordinal));
}
