using System.Globalization;
using Containerd.Shimkit;
using Grpc.Core;

namespace Containerd.Shim.Wasm;

/// <summary>
/// The largest module or component a shim or the shared daemon reads, from a rootfs file or an image layer. A tenant
/// chooses the file and it is read whole into memory (in the daemon, memory every tenant shares), so it is bounded
/// like everything else a tenant writes; the operator sets the bound in the environment of containerd (normal mode)
/// or of the daemon (shared mode). Every engine's shim reads the same variable.
/// </summary>
public static class ModuleSizeLimit
{
    /// <summary>The variable: bytes, or a number with K, M or G.</summary>
    public const string Variable = "CONTAINERD_SHIM_WASM_MAX_MODULE_SIZE";

    /// <summary>The bound when the variable is unset (256 MiB).</summary>
    public const int DefaultBytes = 256 << 20;

    private static readonly Lazy<int> FromEnvironment = new(() => Parse(Environment.GetEnvironmentVariable(Variable)));

    /// <summary>The bound in effect.</summary>
    /// <exception cref="ShimException">The variable has a value it cannot have (InvalidArgument, naming it).</exception>
    public static int Bytes => FromEnvironment.Value;

    /// <summary>The bound a value of <see cref="Variable"/> gives: the default for null or empty.</summary>
    /// <exception cref="ShimException">Not a size, zero, or more than a byte array can hold.</exception>
    public static int Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return DefaultBytes;
        }
        return ByteSize.Parse(text) is { } n && n > 0 && n <= Array.MaxLength
            ? (int)n
            : throw new ShimException(StatusCode.InvalidArgument,
                $"{Variable}={UntrustedText.Excerpt(text, 40)}: not a size from 1 to {Array.MaxLength.ToString(CultureInfo.InvariantCulture)} bytes (use bytes, or a number with K, M or G)");
    }

    /// <summary>The words of a refusal: "is N bytes, more than the M bytes a module may have (VARIABLE)"; without a
    /// length (a stream that went past the bound) "is more than …".</summary>
    public static string TooLarge(long? length, int limit) =>
        (length is { } n ? $"is {n.ToString(CultureInfo.InvariantCulture)} bytes, more" : "is more") +
        $" than the {limit.ToString(CultureInfo.InvariantCulture)} bytes a module may have ({Variable})";
}
