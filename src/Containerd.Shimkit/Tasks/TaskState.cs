namespace Containerd.Shimkit.Tasks;

/// <summary>Lifecycle of a task in the shim. Only the transitions <see cref="ShimTask"/> allows are possible.</summary>
internal enum TaskState
{
    /// <summary>Created: the process exists but the program has not started.</summary>
    Created,

    /// <summary>Started and not yet exited.</summary>
    Running,

    /// <summary>Exited (normally, by signal, or before it was ever started); the exit status is known.</summary>
    Stopped,

    /// <summary>Deleted: resources released; the task is gone from the shim.</summary>
    Deleted,
}
