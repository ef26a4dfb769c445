using Containerd.Api.Client;
using Cri.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Cri.Tests;

/// <summary>A CRI client over containerd's socket: what kubelet talks to, gRPC <c>runtime.v1</c>.</summary>
internal sealed class CriClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public CriClient(string address)
    {
        _channel = UnixSocketChannel.Create(address);
        Runtime = new RuntimeService.RuntimeServiceClient(_channel);
        Images = new ImageService.ImageServiceClient(_channel);
    }

    public RuntimeService.RuntimeServiceClient Runtime { get; }

    public ImageService.ImageServiceClient Images { get; }

    /// <summary>A deadline for one call, so a hung runtime fails a test instead of stalling the run.</summary>
    public static DateTime Deadline(double seconds = 120) => DateTime.UtcNow.AddSeconds(seconds);

    public void Dispose() => _channel.Dispose();

    /// <summary>Waits until CRI knows the image (ctr imports reach CRI's image store through events, a moment later).</summary>
    public async Task WaitForImageAsync(string image, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = await Images.ImageStatusAsync(
                new ImageStatusRequest { Image = new ImageSpec { Image = image } }, deadline: Deadline(30));
            if (status.Image is not null)
            {
                return;
            }
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"CRI does not list image {image} after {timeout}");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Polls ContainerStatus until the container has exited.</summary>
    public async Task<ContainerStatus> WaitForExitAsync(string containerId, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var status = (await Runtime.ContainerStatusAsync(new ContainerStatusRequest { ContainerId = containerId }, deadline: Deadline(30))).Status;
            if (status.State == ContainerState.ContainerExited)
            {
                return status;
            }
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"container {containerId} is still {status.State} after {timeout}");
            }
            await Task.Delay(100);
        }
    }

    public static bool IsCode(RpcException e, StatusCode code) => e.StatusCode == code;
}
