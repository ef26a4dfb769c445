using Containerd.Api.Client;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The instance process's way to the module of a wasm-layer image: it asks containerd itself, over containerd's gRPC
/// socket in the container's namespace, and holds the bytes in memory. Nothing is written to disk and nothing crosses
/// from the shim server, which never learns whether a container's module came from the rootfs or from a layer.
/// </summary>
/// <param name="containerId">The container whose image is looked up.</param>
/// <param name="namespace">The containerd namespace of the container.</param>
/// <param name="containerdAddress">containerd's gRPC socket (the shim's <c>-address</c>).</param>
public sealed class ImageModuleSource(string containerId, string @namespace, string containerdAddress)
{
    /// <summary>
    /// The module args[0] names from the container's image, or null when the image has no wasm layers. Fits
    /// <see cref="RuntimeContext.FromSpec"/>'s image module callback.
    /// </summary>
    /// <exception cref="EntrypointException">The image has several wasm layers and none is named
    /// <paramref name="name"/>, or containerd could not be asked.</exception>
    public Entrypoint? Resolve(string name, string function)
    {
        using var client = new ContainerdClient(containerdAddress, @namespace);
        try
        {
            return WasmLayerImage.ResolveAsync(client, containerId, name, function).GetAwaiter().GetResult();
        }
        catch (RpcException e)
        {
            throw new EntrypointException(EntrypointError.NotFound, name,
                $"no such file in the rootfs, and the container's image could not be read from containerd: {e.Status.Detail}", e);
        }
        catch (InvalidDataException e)
        {
            throw new EntrypointException(EntrypointError.NotFound, name,
                $"no such file in the rootfs, and the container's image is unreadable: {e.Message}", e);
        }
    }
}
