namespace Stress;

/// <summary>One task's Create → Start → Wait → Delete against some target, cleaning up whatever it created.</summary>
public interface ITaskCycle
{
    /// <summary>Runs task <paramref name="id"/> to completion and removes what it created, even when cancelled.</summary>
    Task<TaskOutcome> RunAsync(string id, CancellationToken cancellationToken);
}
