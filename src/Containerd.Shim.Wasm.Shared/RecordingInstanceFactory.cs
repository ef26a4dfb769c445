using System.Globalization;
using Containerd.Shimkit;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// Wraps the daemon's instance factory so every task keeps its <see cref="TaskRecord"/> in its bundle current:
/// created at Create, running at Start, the exit status and time as soon as the program ended.
/// </summary>
internal sealed class RecordingInstanceFactory(IInstanceFactory inner) : IInstanceFactory
{
    public async Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        var instance = await inner.CreateAsync(config, ct).ConfigureAwait(false);
        var record = new TaskRecord { Pid = instance.Pid };
        record.Save(config.Bundle);
        return instance is IInstanceResources resources
            ? new RecordingInstanceWithResources(instance, resources, config.Bundle, record)
            : new RecordingInstance(instance, config.Bundle, record);
    }
}

internal class RecordingInstance : IInstance
{
    private readonly IInstance _inner;
    private readonly string _bundle;
    private readonly TaskRecord _record;
    private readonly Lock _gate = new();

    public RecordingInstance(IInstance inner, string bundle, TaskRecord record)
    {
        _inner = inner;
        _bundle = bundle;
        _record = record;
        _ = RecordExitAsync();
    }

    public int Pid => _inner.Pid;

    public async Task StartAsync(CancellationToken ct)
    {
        await _inner.StartAsync(ct).ConfigureAwait(false);
        lock (_gate)
        {
            if (_record.Status == "created")
            {
                _record.Status = "running";
                _record.Save(_bundle);
            }
        }
    }

    public void Kill(int signal) => _inner.Kill(signal);

    public Task<ExitStatus> WaitAsync(CancellationToken ct) => _inner.WaitAsync(ct);

    public ValueTask DeleteAsync() => _inner.DeleteAsync();

    private async Task RecordExitAsync()
    {
        ExitStatus status;
        try
        {
            status = await _inner.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return;
        }
        lock (_gate)
        {
            _record.Status = "stopped";
            _record.ExitStatus = status.ExitCode;
            _record.ExitedAt = status.ExitedAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
            _record.Save(_bundle);
        }
    }
}

internal sealed class RecordingInstanceWithResources(IInstance inner, IInstanceResources resources, string bundle, TaskRecord record)
    : RecordingInstance(inner, bundle, record), IInstanceResources
{
    public event Action? OomKilled
    {
        add => resources.OomKilled += value;
        remove => resources.OomKilled -= value;
    }

    public Google.Protobuf.WellKnownTypes.Any Stats() => resources.Stats();

    public void Update(Google.Protobuf.WellKnownTypes.Any resourcesUpdate, IReadOnlyDictionary<string, string> annotations) =>
        resources.Update(resourcesUpdate, annotations);
}
