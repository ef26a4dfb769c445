using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>One directory the guest sees: <paramref name="HostPath"/> (inside the rootfs) at
/// <paramref name="GuestPath"/>, writable or read-only.</summary>
public sealed record WasiPreopen(string HostPath, string GuestPath, bool Writable);

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
        if (spec.Annotations?.TryGetValue(Annotation, out var value) != true || value is null)
        {
            return [new WasiPreopen(rootfs, "/", Writable: true)];
        }
        if (value.Trim() == "none")
        {
            return [];
        }
        var preopens = new List<WasiPreopen>();
        foreach (var raw in value.Split(','))
        {
            var entry = raw.Trim();
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
            if (preopens.Any(p => p.GuestPath == guestPath))
            {
                throw Invalid(value, $"entry \"{entry}\": {guestPath} is listed twice");
            }
            string hostPath;
            try
            {
                hostPath = RootfsPath.Resolve(rootfs, guestPath).HostPath;
            }
            catch (EntrypointException)
            {
                throw Invalid(value, $"entry \"{entry}\": {guestPath} leads outside the rootfs");
            }
            if (!Directory.Exists(hostPath))
            {
                throw Invalid(value, $"entry \"{entry}\": {guestPath} is not a directory in the container");
            }
            preopens.Add(new WasiPreopen(hostPath, guestPath, writable));
        }
        return preopens;
    }

    private static ShimException Invalid(string value, string reason) =>
        new(StatusCode.InvalidArgument, $"annotation {Annotation}=\"{value}\": {reason}");
}
