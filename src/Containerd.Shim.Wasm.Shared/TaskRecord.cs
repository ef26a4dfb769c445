using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Containerd.Shimkit;

namespace Containerd.Shim.Wasm.Shared;

/// <summary>
/// What the daemon knows about one task, kept in the task's bundle (<see cref="FileName"/>) and rewritten at every
/// change, so that the client shim's <c>delete</c> can tell containerd how the task ended after the daemon died.
/// </summary>
public sealed class TaskRecord
{
    /// <summary>The file in the bundle.</summary>
    public const string FileName = "shared-task.json";

    // A record is a few hundred bytes; the bundle's files are read with a bound.
    private const int MaxBytes = 64 << 10;

    /// <summary>The task pid: the daemon's own pid.</summary>
    [JsonPropertyName("pid")]
    public int Pid { get; set; }

    /// <summary><c>created</c>, <c>running</c> or <c>stopped</c>.</summary>
    [JsonPropertyName("status")]
    public string Status { get; set; } = "created";

    /// <summary>The exit status, once stopped.</summary>
    [JsonPropertyName("exit_status")]
    public int? ExitStatus { get; set; }

    /// <summary>When the task exited (RFC 3339, UTC), once stopped.</summary>
    [JsonPropertyName("exited_at")]
    public string? ExitedAt { get; set; }

    /// <summary>The exit time, when one was recorded.</summary>
    public DateTimeOffset? ExitedAtTime =>
        ExitedAt is { } s && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;

    /// <summary>Writes the record into <paramref name="bundle"/> atomically (a reader never sees half a file).
    /// Failures are logged, never thrown: the task runs without its record.</summary>
    public void Save(string bundle)
    {
        var path = Path.Combine(bundle, FileName);
        try
        {
            var partial = path + ".partial";
            File.WriteAllText(partial, JsonSerializer.Serialize(this, TaskRecordJson.Default.TaskRecord));
            File.Move(partial, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ShimLog.Warn($"writing {path}: {e.Message}");
        }
    }

    /// <summary>The record in <paramref name="bundle"/>, or null when there is none or it is unreadable.</summary>
    public static TaskRecord? Load(string bundle)
    {
        var path = Path.Combine(bundle, FileName);
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize(BoundedRead.Text(path, MaxBytes), TaskRecordJson.Default.TaskRecord) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            ShimLog.Warn($"reading {path}: {e.Message}");
            return null;
        }
    }

    /// <summary>Removes the record from <paramref name="bundle"/>.</summary>
    public static void Remove(string bundle)
    {
        try
        {
            File.Delete(Path.Combine(bundle, FileName));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

[JsonSerializable(typeof(TaskRecord))]
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
internal sealed partial class TaskRecordJson : JsonSerializerContext
{
}
