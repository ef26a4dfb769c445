using Containerd.Api.Client;
using Containerd.Shimkit;
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
public sealed class ImageModuleSource(string containerId, string @namespace, string containerdAddress) : IDisposable
{
    // How long the lookup may take. The instance process reports nothing to the shim until it has the module, so a
    // containerd that never answers (or an instance that cannot reach it) would otherwise hold Create until the
    // caller's own deadline, with no reason given; a module of the size bound streams from a local socket in seconds.
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(60);

    private ContainerdClient? _kept;

    /// <summary>
    /// Whether the connection that found the module stays open for the entrypoint's compiled-module cache (until
    /// <see cref="Dispose"/>), instead of each closing its own: one connection for the whole start. For a process that
    /// disposes this source once the module is loaded (the instance process); off by default.
    /// </summary>
    public bool ShareConnection { get; init; }

    /// <summary>
    /// The module args[0] names from the container's image, or null when the image has no wasm layers. Fits
    /// <see cref="RuntimeContext.FromSpec(string, string, Containerd.Shimkit.Oci.Spec, Func{string, string, Entrypoint?}?)"/>'s image module callback.
    /// </summary>
    /// <exception cref="EntrypointException">The image has several wasm layers and none is named
    /// <paramref name="name"/>, or containerd could not be asked.</exception>
    public Entrypoint? Resolve(string name, string function)
    {
        ShimTrace.Mark("instance: asking containerd for the image's wasm layers");
        var client = new ContainerdClient(containerdAddress, @namespace);
        using var deadline = new CancellationTokenSource(ResolveTimeout);
        try
        {
            var entrypoint = WasmLayerImage.ResolveAsync(client, containerId, name, function, deadline.Token, shareClient: ShareConnection)
                .GetAwaiter().GetResult();
            if (ShareConnection)
            {
                _kept?.Dispose();
                _kept = client;
                client = null;
            }
            return entrypoint;
        }
        catch (Exception e) when (deadline.IsCancellationRequested && e is OperationCanceledException or RpcException)
        {
            throw new EntrypointException(EntrypointError.NotFound, name,
                $"no such file in the rootfs, and containerd did not answer for the container's image within {ResolveTimeout.TotalSeconds:0} s", e);
        }
        catch (RpcException e)
        {
            throw new EntrypointException(EntrypointError.NotFound, name,
                $"no such file in the rootfs, and the container's image could not be read from containerd: {e.Status.Detail}", e);
        }
        catch (Exception e) when (e is InvalidDataException or BlobTooLargeException)
        {
            throw new EntrypointException(EntrypointError.NotFound, name,
                $"no such file in the rootfs, and the container's image is unreadable: {e.Message}", e);
        }
        finally
        {
            client?.Dispose();
        }
    }

    /// <summary>Closes the connection kept for the cache, if any.</summary>
    public void Dispose()
    {
        _kept?.Dispose();
        _kept = null;
    }
}
