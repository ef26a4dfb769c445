using Containerd.Shimkit;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The program a container runs, resolved from <c>process.args[0]</c> (<c>path[#function]</c>) inside the rootfs.
/// </summary>
public sealed class Entrypoint
{
    /// <summary>The function a WASI command starts in when <c>#function</c> is not given.</summary>
    public const string DefaultFunction = "_start";

    /// <summary>Host path of the module file inside the rootfs, after symlinks were resolved within the rootfs;
    /// null when the module comes from <see cref="Bytes"/>.</summary>
    public string? Path { get; init; }

    private ReadOnlyMemory<byte>? _bytes;

    /// <summary>The module's bytes when it does not come from a file (an OCI wasm layer); null otherwise.</summary>
    public ReadOnlyMemory<byte>? Bytes { get => _bytes; init => _bytes = value; }

    /// <summary>
    /// Drops <see cref="Bytes"/> once the engine has what it needs from them (compiled, or found by digest): a
    /// container that outlives its Create would otherwise keep a copy of its module for as long as it runs (measured
    /// in the shared-mode daemon: one 257 KB copy of the demo per idle instance, most of its memory).
    /// </summary>
    public void ReleaseBytes() => _bytes = null;

    /// <summary>
    /// The module's bytes for an engine to compile: <see cref="Bytes"/>, or the file at <see cref="Path"/> read up to
    /// <see cref="ModuleSizeLimit.Bytes"/>. Throws <see cref="EntrypointException"/> when there is neither or the file
    /// is larger than the limit.
    /// </summary>
    public ReadOnlyMemory<byte> ReadModule()
    {
        if (Bytes is { } b)
        {
            return b;
        }
        var path = Path ?? throw new EntrypointException(EntrypointError.Missing, Name, "no module file or bytes");
        var limit = ModuleSizeLimit.Bytes;
        try
        {
            return BoundedRead.File(path, limit);
        }
        catch (ReadLimitExceededException e)
        {
            throw new EntrypointException(EntrypointError.InvalidModule, Name, ModuleSizeLimit.TooLarge(null, limit), e);
        }
    }

    /// <summary>The exported function to call; <see cref="DefaultFunction"/> unless <c>#function</c> was given.</summary>
    public string Function { get; init; } = DefaultFunction;

    /// <summary>The name the entrypoint was given by (<c>args[0]</c> without <c>#function</c>); it becomes the
    /// program's argv[0].</summary>
    public required string Name { get; init; }

    /// <summary>Where compiled artifacts of this module are kept between containers, when its source provides a place
    /// (the content store for a wasm layer); null leaves the choice to the engine.</summary>
    public ICompiledModuleCache? Cache { get; init; }

    /// <summary>Whether the module is WebAssembly text (<c>.wat</c>) rather than binary.</summary>
    public ModuleFormat Format { get; init; } = ModuleFormat.Binary;
}
