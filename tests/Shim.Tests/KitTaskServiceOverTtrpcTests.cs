using Containerd.Runtime.TaskV2;
using Containerd.Shimkit;
using Containerd.Shimkit.Tasks;
using Grpc.Core;
using Ttrpc;
using Xunit;
using Task = System.Threading.Tasks.Task;
using TaskApi = Containerd.Runtime.TaskV2.Task;

namespace Shim.Tests;

/// <summary>The Task service behind a real ttrpc server, as containerd talks to it: errors become statuses in one place.</summary>
public class KitTaskServiceOverTtrpcTests
{
    [Fact]
    public async Task Errors_reach_the_client_with_their_grpc_codes_and_namespace_comes_from_metadata()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kit-task-{Guid.NewGuid():N}.sock");
        var factory = new FakeFactory();
        var events = new RecordingPublisher();
        var service = new TaskService(factory, events, new TaskServiceOptions
        {
            Info = new ShimInfo("io.containerd.test.v1", "1", "r"),
            DefaultNamespace = "flagns",
            ContainerdAddress = "/c.sock",
            TtrpcAddress = "/c.sock.ttrpc",
        });
        await using var server = new TtrpcServer(new TtrpcServerOptions { ExceptionMapper = e => ShimErrors.ToStatus(e) });
        TaskApi.BindService(server.Binder, service);
        server.Listen(path);
        await server.StartAsync();
        await using var channel = new TtrpcChannel(path);
        var client = new TaskApi.TaskClient(channel.CreateCallInvoker());

        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.DeleteAsync(new DeleteRequest { Id = "missing" }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("missing", e.Status.Detail);

        e = await Assert.ThrowsAsync<RpcException>(async () => await client.PauseAsync(new PauseRequest { Id = "x" }));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);

        using var bundle = new TempBundle();
        var headers = new Metadata { { TaskService.NamespaceHeader, "k8s.io" } };
        var created = await client.CreateAsync(new CreateTaskRequest { Id = "c", Bundle = bundle.Path }, headers);
        Assert.Equal("k8s.io", factory.Created[0].Config.Namespace);
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.CreateAsync(new CreateTaskRequest { Id = "c", Bundle = bundle.Path }, headers));
        Assert.Equal(StatusCode.AlreadyExists, e.StatusCode);
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.KillAsync(new KillRequest { Id = "c", Signal = 9 }, headers));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);

        await client.StartAsync(new StartRequest { Id = "c" }, headers);
        var wait = client.WaitAsync(new WaitRequest { Id = "c" }, headers);
        await client.KillAsync(new KillRequest { Id = "c", Signal = 15 }, headers);
        Assert.Equal(143u, (await wait).ExitStatus);
        var deleted = await client.DeleteAsync(new DeleteRequest { Id = "c" }, headers);
        Assert.Equal(created.Pid, deleted.Pid);
        Assert.All(events.Events, ev => Assert.Equal("k8s.io", ev.Ns));
    }
}
