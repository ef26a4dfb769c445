namespace Containerd.Shimkit.Events;

/// <summary>The topics containerd expects for task events.</summary>
public static class TaskTopics
{
    /// <summary>containerd.events.TaskCreate.</summary>
    public const string Create = "/tasks/create";

    /// <summary>containerd.events.TaskStart.</summary>
    public const string Start = "/tasks/start";

    /// <summary>containerd.events.TaskExit.</summary>
    public const string Exit = "/tasks/exit";

    /// <summary>containerd.events.TaskDelete.</summary>
    public const string Delete = "/tasks/delete";

    /// <summary>containerd.events.TaskOOM.</summary>
    public const string Oom = "/tasks/oom";
}
