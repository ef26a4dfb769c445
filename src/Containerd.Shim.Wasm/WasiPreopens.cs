using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>One directory the guest sees: <paramref name="HostPath"/> at <paramref name="GuestPath"/>, writable or
/// read-only. <paramref name="HostPath"/> is what the engine opens: <c>/proc/self/fd/N</c> of a descriptor the wasm
/// layer resolved inside the rootfs (so the directory cannot be swapped before the engine opens it), or, once an
/// instance process has entered its rootfs, the guest path itself.</summary>
public sealed record WasiPreopen(string HostPath, string GuestPath, bool Writable)
{
    /// <summary>The descriptor <see cref="HostPath"/> names, kept open as long as the preopen is.</summary>
    internal SafeFileHandle? Handle { get; init; }
}

/// <summary>
/// The directories a container's guest gets, from the <see cref="Annotation"/> annotation of its spec. Engine-agnostic:
/// an engine only maps the list to its own preopens. Without the annotation the rootfs is <c>/</c>, read-write.
/// </summary>
public static class WasiPreopens
{
    /// <summary>The annotation: <c>none</c>, or comma-separated <c>&lt;path&gt;:&lt;ro|rw&gt;</c> entries, each path a
    /// directory inside the container (e.g. <c>/:ro,/data:rw</c>).</summary>
    public const string Annotation = "io.runwasi-dotnet.wasi.preopens";

    /// <summary>Reads the annotation of <paramref name="spec"/>, resolving each path inside <paramref name="rootfs"/>.</summary>
    /// <exception cref="ShimException">InvalidArgument naming the annotation, the entry and the reason.</exception>
    public static IReadOnlyList<WasiPreopen> FromSpec(Spec spec, string rootfs)
    {
        using var root = RootfsPath.OpenRoot(rootfs);
        return FromSpec(spec, root);
    }

    /// <summary>As <see cref="FromSpec(Spec, string)"/>, from a descriptor of the rootfs; every preopen holds a
    /// descriptor of its own directory.</summary>
    internal static IReadOnlyList<WasiPreopen> FromSpec(Spec spec, SafeFileHandle root)
    {
        if (spec.Annotations?.TryGetValue(Annotation, out var value) != true || value is null)
        {
            return [Opened(RootfsPath.Open(root, "/"), "/", writable: true)];
        }
        if (value.Trim() == "none")
        {
            return [];
        }
        var preopens = new List<WasiPreopen>();
        try
        {
            foreach (var raw in value.Split(','))
            {
                preopens.Add(Entry(raw.Trim(), value, root, preopens));
            }
        }
        catch
        {
            Close(preopens);
            throw;
        }
        return preopens;
    }

    private static WasiPreopen Entry(string entry, string value, SafeFileHandle root, List<WasiPreopen> earlier)
    {
        var colon = entry.LastIndexOf(':');
        if (colon <= 0)
        {
            throw Invalid(value, $"entry \"{entry}\" is not <path>:<ro|rw> (or the whole value \"none\")");
        }
        var (path, permission) = (entry[..colon], entry[(colon + 1)..]);
        var writable = permission switch
        {
            "rw" => true,
            "ro" => false,
            _ => throw Invalid(value, $"entry \"{entry}\": unknown permission \"{permission}\" (use ro or rw)"),
        };
        if (!path.StartsWith('/') || path.Split('/').Any(p => p is "." or ".."))
        {
            throw Invalid(value, $"entry \"{entry}\": \"{path}\" is outside the rootfs (use an absolute path without . or ..)");
        }
        var guestPath = path.Length > 1 ? path.TrimEnd('/') : path;
        if (earlier.Any(p => p.GuestPath == guestPath))
        {
            throw Invalid(value, $"entry \"{entry}\": {guestPath} is listed twice");
        }
        SafeFileHandle dir;
        try
        {
            dir = RootfsPath.Open(root, guestPath);
        }
        catch (EntrypointException e)
        {
            throw Invalid(value, $"entry \"{entry}\": {guestPath}: {e.Reason}");
        }
        if (RootfsPath.KindOf(dir) != RootfsPath.Kind.Directory)
        {
            dir.Dispose();
            throw Invalid(value, $"entry \"{entry}\": {guestPath} is not a directory in the container");
        }
        return Opened(dir, guestPath, writable);
    }

    /// <summary>The same preopens for a process whose root is now the container's rootfs: the engine opens each by
    /// its guest path, which the kernel can only resolve inside the container. The descriptors are closed.</summary>
    internal static IReadOnlyList<WasiPreopen> InsideRootfs(IReadOnlyList<WasiPreopen> preopens)
    {
        Close(preopens);
        return preopens.Select(p => new WasiPreopen(p.GuestPath, p.GuestPath, p.Writable)).ToList();
    }

    /// <summary>Closes the descriptors of <paramref name="preopens"/>.</summary>
    internal static void Close(IEnumerable<WasiPreopen> preopens)
    {
        foreach (var p in preopens)
        {
            p.Handle?.Dispose();
        }
    }

    private static WasiPreopen Opened(SafeFileHandle dir, string guestPath, bool writable) =>
        new($"/proc/self/fd/{(int)dir.DangerousGetHandle()}", guestPath, writable) { Handle = dir };

    private static ShimException Invalid(string value, string reason) =>
        new(StatusCode.InvalidArgument, $"annotation {Annotation}=\"{value}\": {reason}");
}
