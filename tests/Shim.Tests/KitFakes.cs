using Containerd.Shimkit;
using Containerd.Shimkit.Events;
using Google.Protobuf;

namespace Shim.Tests;

/// <summary>An in-memory instance for unit tests of the Task service (no process).</summary>
internal sealed class FakeInstance : IInstance
{
    private readonly TaskCompletionSource<ExitStatus> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private static int _nextPid = 40000;

    public FakeInstance(InstanceConfig config) => Config = config;

    public InstanceConfig Config { get; }
    public int Pid { get; } = Interlocked.Increment(ref _nextPid);
    public bool Started { get; private set; }
    public int DeleteCalls { get; private set; }
    public List<int> Signals { get; } = [];

    public Task StartAsync(CancellationToken ct)
    {
        Started = true;
        return Task.CompletedTask;
    }

    public void Kill(int signal)
    {
        if (_exit.Task.IsCompleted)
        {
            throw new ShimException(Grpc.Core.StatusCode.NotFound, "process already finished");
        }
        Signals.Add(signal);
        Exit(128 + signal);
    }

    public void Exit(int code) => _exit.TrySetResult(new ExitStatus(code, DateTimeOffset.UtcNow));

    public Task<ExitStatus> WaitAsync(CancellationToken ct) => _exit.Task.WaitAsync(ct);

    public ValueTask DeleteAsync()
    {
        DeleteCalls++;
        return ValueTask.CompletedTask;
    }
}

internal sealed class FakeFactory : IInstanceFactory
{
    public List<FakeInstance> Created { get; } = [];
    public Exception? FailWith { get; set; }

    public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        if (FailWith is not null)
        {
            throw FailWith;
        }
        var instance = new FakeInstance(config);
        lock (Created)
        {
            Created.Add(instance);
        }
        return Task.FromResult<IInstance>(instance);
    }
}

internal sealed class RecordingPublisher : IEventPublisher
{
    public List<(string Ns, string Topic, IMessage Event)> Events { get; } = [];

    public void Publish(string ns, string topic, IMessage evt)
    {
        lock (Events)
        {
            Events.Add((ns, topic, evt));
        }
    }

    public string[] Topics()
    {
        lock (Events)
        {
            return [.. Events.Select(e => e.Topic)];
        }
    }
}

/// <summary>A bundle directory with a config.json, removed at dispose.</summary>
internal sealed class TempBundle : IDisposable
{
    public TempBundle(string? configJson = "{\"ociVersion\":\"1.1.0\",\"process\":{\"args\":[\"/app.wasm\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}")
    {
        Path = Directory.CreateTempSubdirectory("kit-bundle-").FullName;
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "rootfs"));
        if (configJson is not null)
        {
            File.WriteAllText(System.IO.Path.Combine(Path, "config.json"), configJson);
        }
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, true);
}
