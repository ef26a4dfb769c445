using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using StateRequest = Containerd.Runtime.TaskV2.StateRequest;
using StateResponse = Containerd.Runtime.TaskV2.StateResponse;
using TaskApi = Containerd.Runtime.TaskV2.Task;
using TaskStatus = Containerd.V1.Types.Status;

namespace Ttrpc.Tests.Interop;

/// <summary>
/// containerd's own Go ttrpc client (<c>ctr shim</c>) against the .NET server serving the task v2
/// API: the server side of the wire format, metadata and status codes, proven against the real thing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CtrShimTests(ContainerdTtrpcFixture containerd) : IClassFixture<ContainerdTtrpcFixture>
{
    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Ctr_shim_state_gets_the_answer_of_a_dotnet_task_service()
    {
        string id = "ttrpc-" + Guid.NewGuid().ToString("N")[..8];
        var service = new StateOnlyTaskService();
        string socket = ShimSocketPath(id);
        await using var server = new TtrpcServer();
        TaskApi.BindService(server.Binder, service);
        server.Listen(socket);
        await server.StartAsync();

        var result = await containerd.CtrAsync(ShimArgs(socket, id, "state"));

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains(id, result.Stdout, StringComparison.Ordinal);
        Assert.Contains("4242", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(id, service.LastId);
    }

    [Fact]
    public async Task An_unimplemented_task_method_reaches_ctr_as_an_error()
    {
        string id = "ttrpc-" + Guid.NewGuid().ToString("N")[..8];
        string socket = ShimSocketPath(id);
        await using var server = new TtrpcServer();
        TaskApi.BindService(server.Binder, new StateOnlyTaskService());
        server.Listen(socket);
        await server.StartAsync();

        // "delete" calls Task.Delete, which the service does not implement.
        var result = await containerd.CtrAsync(ShimArgs(socket, id, "delete"));

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("Unimplemented", result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    private bool HasShimAddressFlag => containerd.Options.IsV2;

    private string[] ShimArgs(string socket, string id, string command) =>
        (HasShimAddressFlag, command) switch
        {
            (true, "state") => ["shim", "--shim-address", "unix://" + socket, "--id", id, command, "--api-version", "2", "--task-id", id],
            (true, _) => ["shim", "--shim-address", "unix://" + socket, "--id", id, command],
            _ => ["shim", "--id", id, command],
        };

    // containerd 1.x's ctr has no --shim-address; it derives the socket from address, namespace and id
    // the way containerd does for shims: /run/containerd/s/<sha256 of "address/namespace/id">.
    private string ShimSocketPath(string id)
    {
        if (HasShimAddressFlag)
        {
            return Path.Combine(containerd.WorkDir, id + ".sock");
        }

        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{containerd.Address}/{containerd.Namespace}/{id}")));
        Directory.CreateDirectory("/run/containerd/s");
        return Path.Combine("/run/containerd/s", hash);
    }

    private sealed class StateOnlyTaskService : TaskApi.TaskBase
    {
        public string? LastId { get; private set; }

        public override Task<StateResponse> State(StateRequest request, ServerCallContext context)
        {
            // ctr shim calls with a bare context: no namespace metadata to check here.
            LastId = request.Id;
            return System.Threading.Tasks.Task.FromResult(new StateResponse
            {
                Id = request.Id,
                Bundle = "/run/bundle/" + request.Id,
                Pid = 4242,
                Status = TaskStatus.Running,
            });
        }
    }
}
