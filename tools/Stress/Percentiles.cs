namespace Stress;

/// <summary>Nearest-rank percentiles of a set of durations.</summary>
public static class Percentiles
{
    /// <summary>The <paramref name="percentile"/>th percentile (0-100) of <paramref name="sorted"/>, which must be sorted.</summary>
    public static TimeSpan Of(IReadOnlyList<TimeSpan> sorted, double percentile)
    {
        if (sorted.Count == 0)
        {
            return TimeSpan.Zero;
        }
        var rank = (int)Math.Ceiling(percentile / 100.0 * sorted.Count);
        return sorted[Math.Clamp(rank, 1, sorted.Count) - 1];
    }
}
