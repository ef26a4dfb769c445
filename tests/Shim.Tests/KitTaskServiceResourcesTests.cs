using Containerd.Events;
using Containerd.Runtime.TaskV2;
using Containerd.Shimkit;
using Containerd.Shimkit.Events;
using Containerd.Shimkit.Tasks;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
using Xunit;

namespace Shim.Tests;

/// <summary>The Task service's Stats, Update and /tasks/oom over instances with and without IInstanceResources.</summary>
public sealed class KitTaskServiceResourcesTests
{
    private readonly RecordingPublisher _events = new();

    private TaskService NewService(IInstanceFactory factory) => new(factory, _events, new TaskServiceOptions
    {
        Info = new ShimInfo("io.containerd.test.v1", "1.2.3", "abc"),
        DefaultNamespace = "testns",
        ContainerdAddress = "/run/containerd/containerd.sock",
        TtrpcAddress = "/run/containerd/containerd.sock.ttrpc",
    });

    [Fact]
    public async Task Stats_and_update_reach_the_instance_and_oom_kills_are_published()
    {
        using var bundle = new TempBundle();
        var factory = new ResourcefulFactory();
        var svc = NewService(factory);
        await svc.Create(new CreateTaskRequest { Id = "r1", Bundle = bundle.Path }, null!);
        var instance = factory.Instance!;

        var stats = await svc.Stats(new StatsRequest { Id = "r1" }, null!);
        Assert.Equal("io.containerd.cgroups.v1.Metrics", stats.Stats.TypeUrl);

        var resources = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources" };
        await svc.Update(new UpdateTaskRequest { Id = "r1", Resources = resources, Annotations = { ["a"] = "b" } }, null!);
        Assert.Same(resources, instance.Updated);
        Assert.Equal("b", instance.Annotations!["a"]);

        instance.RaiseOom();
        var oom = Assert.Single(_events.Events, e => e.Topic == TaskTopics.Oom);
        Assert.Equal("testns", oom.Ns);
        Assert.Equal("r1", Assert.IsType<TaskOOM>(oom.Event).ContainerId);

        var e = await Assert.ThrowsAsync<ShimException>(() => svc.Update(new UpdateTaskRequest { Id = "r1" }, null!));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);

        await svc.Start(new StartRequest { Id = "r1" }, null!);
        instance.Exit(0);
        await svc.Wait(new WaitRequest { Id = "r1" }, null!);
        e = await Assert.ThrowsAsync<ShimException>(() => svc.Update(new UpdateTaskRequest { Id = "r1", Resources = resources }, null!));
        Assert.Equal(StatusCode.FailedPrecondition, e.Code);
        Assert.Contains("stopped", e.Message);
    }

    [Fact]
    public async Task Instance_without_resources_is_unimplemented_and_unknown_task_is_not_found()
    {
        using var bundle = new TempBundle();
        var svc = NewService(new FakeFactory());
        await svc.Create(new CreateTaskRequest { Id = "p1", Bundle = bundle.Path }, null!);
        var e = await Assert.ThrowsAsync<ShimException>(() => svc.Stats(new StatsRequest { Id = "p1" }, null!));
        Assert.Equal(StatusCode.Unimplemented, e.Code);
        e = await Assert.ThrowsAsync<ShimException>(() => svc.Update(new UpdateTaskRequest { Id = "p1", Resources = new Any() }, null!));
        Assert.Equal(StatusCode.Unimplemented, e.Code);
        e = await Assert.ThrowsAsync<ShimException>(() => svc.Stats(new StatsRequest { Id = "nope" }, null!));
        Assert.Equal(StatusCode.NotFound, e.Code);
    }

    private sealed class ResourcefulFactory : IInstanceFactory
    {
        public ResourcefulInstance? Instance { get; private set; }

        public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
        {
            Instance = new ResourcefulInstance();
            return Task.FromResult<IInstance>(Instance);
        }
    }

    private sealed class ResourcefulInstance : IInstance, IInstanceResources
    {
        private readonly TaskCompletionSource<ExitStatus> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public event Action? OomKilled;

        public int Pid => 41000;
        public Any? Updated { get; private set; }
        public IReadOnlyDictionary<string, string>? Annotations { get; private set; }

        public Task StartAsync(CancellationToken ct) => Task.CompletedTask;

        public void Kill(int signal) => Exit(128 + signal);

        public void Exit(int code) => _exit.TrySetResult(new ExitStatus(code, DateTimeOffset.UtcNow));

        public Task<ExitStatus> WaitAsync(CancellationToken ct) => _exit.Task.WaitAsync(ct);

        public ValueTask DeleteAsync() => ValueTask.CompletedTask;

        public Any Stats() => new() { TypeUrl = "io.containerd.cgroups.v1.Metrics" };

        public void Update(Any resources, IReadOnlyDictionary<string, string> annotations)
        {
            Updated = resources;
            Annotations = annotations;
        }

        public void RaiseOom() => OomKilled?.Invoke();
    }
}
