namespace Stress;

/// <summary>How one task went.</summary>
/// <param name="Id">The container id.</param>
/// <param name="Durations">How long each phase that ran took.</param>
/// <param name="ExitStatus">The task's exit status, or null when it never exited.</param>
/// <param name="Error">Why the task failed, or null when it succeeded.</param>
public sealed record TaskOutcome(string Id, IReadOnlyDictionary<Phase, TimeSpan> Durations, uint? ExitStatus, string? Error)
{
    /// <summary>The task ran, exited 0 and was cleaned up.</summary>
    public bool Succeeded => Error is null && ExitStatus == 0;

    /// <summary>The task could not be created at all: the shim did not start, was not found or refused the create
    /// (not a timeout or an interrupt). When the first task of a run fails so, the run stops: the rest would too.</summary>
    public bool CreateFailed { get; init; }
}
