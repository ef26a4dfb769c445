namespace Containerd.Shim.Wasm;

/// <summary>Why an entrypoint was rejected; decides the gRPC code containerd receives.</summary>
public enum EntrypointError
{
    /// <summary><c>process.args</c> is empty or names nothing.</summary>
    Missing,

    /// <summary>No such file inside the rootfs (NotFound).</summary>
    NotFound,

    /// <summary>The path leaves the rootfs through <c>..</c> or a symlink.</summary>
    EscapesRootfs,

    /// <summary>The file is neither a wasm module nor wat text.</summary>
    NotWasm,

    /// <summary>The file looks like wasm but the engine rejects it.</summary>
    InvalidModule,

    /// <summary>The module does not export the requested function.</summary>
    NoSuchFunction,
}
