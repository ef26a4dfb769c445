using DeleteResponse = Containerd.Runtime.TaskV2.DeleteResponse;
using Containerd.Shimkit;
using Containerd.Shimkit.Mounts;
using Containerd.Shimkit.Runc;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Runwasi.Services.Sandbox.V1;
using Ttrpc;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// The client shim of shared mode (<c>containerd-shim-&lt;name&gt;d-v1</c>): <c>start</c> asks the daemon for the
/// container's sandbox and hands containerd its socket; <c>delete</c> reports how the task ended from what the daemon
/// recorded in the bundle, which works when the daemon is dead (exactly when containerd calls it), and removes what
/// is left.
/// </summary>
public sealed class SharedShimClient(SharedModeEndpoint endpoint) : IShimActions
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    /// <inheritdoc/>
    public string Start(ShimInvocation invocation)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var socket = endpoint.Socket;
        if (!SocketAddress.IsServing(socket))
        {
            throw new ShimException(StatusCode.Unavailable,
                $"{endpoint.RuntimeName}: the {endpoint.DaemonName} daemon is not running (nothing serves {socket}): " +
                $"start it with `systemctl start {endpoint.DaemonName}` (or run `{endpoint.DaemonName}` as root), " +
                $"or set {endpoint.SocketVariable} in containerd's environment to the socket of the one you run");
        }
        var group = invocation.GroupingId;
        var response = Call(socket, (client, deadline) => client.CreateAsync(new CreateRequest
        {
            Namespace = invocation.Namespace,
            Id = group,
            TtrpcAddress = invocation.TtrpcAddress,
            WorkingDirectory = invocation.Bundle,
            ContainerdAddress = invocation.Address,
        }, deadline: deadline).ResponseAsync, $"create sandbox {group}");
        ShimLog.Debug($"container {invocation.Id}: sandbox {group} at {response.SocketPath}");
        return "unix://" + response.SocketPath;
    }

    /// <inheritdoc/>
    public DeleteResponse Delete(ShimInvocation invocation)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        var socket = endpoint.Socket;
        if (invocation.GroupingId == invocation.Id && SocketAddress.IsServing(socket))
        {
            // A live daemon still holding the sandbox (containerd gave up on it): shut it down, not just forget it.
            try
            {
                Call(socket, (client, deadline) => client.DeleteAsync(new Runwasi.Services.Sandbox.V1.DeleteRequest
                {
                    Namespace = invocation.Namespace,
                    Id = invocation.Id,
                    TtrpcAddress = invocation.TtrpcAddress,
                }, deadline: deadline).ResponseAsync, $"delete sandbox {invocation.Id}");
            }
            catch (ShimException e) when (e.Code == StatusCode.NotFound)
            {
            }
            catch (ShimException e)
            {
                ShimLog.Warn($"delete {invocation.Id}: {e.Message}");
            }
        }
        // A Linux container (pause, sidecar) the daemon ran with runc outlives a dead daemon: remove it (no-op for a
        // wasm container, which has no runc pid file in its bundle).
        new RuncInstanceFactory(RuncOptions.ForRuntime(endpoint.RuntimeName)).CleanupOrphan(invocation.Namespace, invocation.Id, invocation.Bundle);
        try
        {
            RootfsMount.UnmountAll(Path.Combine(invocation.Bundle, "rootfs"));
        }
        catch (ShimException e)
        {
            ShimLog.Warn($"delete {invocation.Id}: {e.Message}");
        }
        var record = TaskRecord.Load(invocation.Bundle);
        TaskRecord.Remove(invocation.Bundle);
        // Nothing recorded, or the daemon died while the task ran: the task died with it, as from SIGKILL.
        var stopped = record is { Status: "stopped", ExitStatus: not null };
        return new DeleteResponse
        {
            Pid = (uint)(record?.Pid ?? 0),
            ExitStatus = (uint)(stopped ? record!.ExitStatus!.Value : 128 + 9),
            ExitedAt = Timestamp.FromDateTimeOffset(stopped && record!.ExitedAtTime is { } t ? t : DateTimeOffset.UtcNow),
        };
    }

    private static T Call<T>(string socket, Func<Manager.ManagerClient, DateTime, Task<T>> call, string what)
    {
        var channel = new TtrpcChannel(socket);
        try
        {
            var client = new Manager.ManagerClient(channel.CreateCallInvoker());
            return call(client, DateTime.UtcNow + CallTimeout).GetAwaiter().GetResult();
        }
        catch (RpcException e)
        {
            throw new ShimException(e.StatusCode, e.Status.Detail.Length > 0 ? e.Status.Detail : $"{what}: {e.Status}");
        }
        finally
        {
            channel.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
