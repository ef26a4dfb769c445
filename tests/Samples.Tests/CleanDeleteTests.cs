using Containerd.Testing;
using Xunit;

namespace Samples.Tests;

/// <summary>
/// A shim built on the packages links the kit's native <c>delete</c> answer without asking: the Containerd.Shimkit
/// package's buildTransitive targets compile <c>clean_delete.c</c> into every NativeAOT executable that references it,
/// directly (nodewasi), through the shared-mode library (nodewasi-shared) or through the wasm layer (minimal-engine).
/// </summary>
[Trait("Category", "Integration")]
[Trait("Category", "Samples")]
public sealed class CleanDeleteTests
{
    [Theory]
    [InlineData("containerd-shim-nodewasi-v1")]
    [InlineData("containerd-shim-nodewasid-v1")]
    [InlineData("containerd-shim-minimal-v1")]
    public async Task Delete_after_a_clean_shutdown_is_answered_before_dotnet_starts(string shim)
    {
        var bin = Environment.GetEnvironmentVariable("SAMPLES_BIN_DIR");
        if (string.IsNullOrEmpty(bin) || !File.Exists(Path.Combine(bin, shim)))
        {
            throw new InvalidOperationException($"SAMPLES_BIN_DIR must name the folder `make samples` installs {shim} to");
        }
        await ShimDeleteRun.AssertAnsweredBeforeDotnetAsync(Path.Combine(bin, shim));
    }
}
