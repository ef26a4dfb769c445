namespace Stress;

/// <summary>The steps of one task's life the tool times.</summary>
public enum Phase
{
    /// <summary>Container record, snapshot and Tasks.Create.</summary>
    Create,

    /// <summary>Tasks.Start.</summary>
    Start,

    /// <summary>Tasks.Wait until the process exits.</summary>
    Wait,

    /// <summary>Tasks.Delete plus removing the container and its snapshot.</summary>
    Delete,
}
