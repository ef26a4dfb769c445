namespace Containerd.Shimkit.Events;

/// <summary>Retry and shutdown settings of an <see cref="EventPublisher"/>.</summary>
public sealed class EventPublisherOptions
{
    /// <summary>Attempts per event before it is logged and dropped. Default 10.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>Wait after the first failure; doubled after each further one. Default 50 ms.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Upper bound of the wait between attempts. Default 2 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Deadline of one Forward call. Default 5 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long disposal waits for queued events. Default 5 s.</summary>
    public TimeSpan FlushTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
