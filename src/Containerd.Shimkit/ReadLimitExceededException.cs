namespace Containerd.Shimkit;

/// <summary>A <see cref="BoundedRead"/> met more than its bound: the writer sent more than the shim will read.</summary>
public sealed class ReadLimitExceededException : IOException
{
    /// <summary>Creates the exception for <paramref name="what"/> (a path or a description) and the bound.</summary>
    public ReadLimitExceededException(string what, long limit)
        : base($"{what} is larger than {limit} bytes, the most the shim reads of it")
    {
        Limit = limit;
    }

    /// <summary>The bound, in bytes.</summary>
    public long Limit { get; }
}
