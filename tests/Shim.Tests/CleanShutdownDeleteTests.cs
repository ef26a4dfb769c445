using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// containerd runs <c>shim delete</c> after every shim connection closes. When the server (normal mode) or the
/// daemon's sandbox (shared mode) left <c>shim-clean-shutdown</c> in the bundle, the kit's native constructor linked
/// into each installed shim executable answers before .NET starts (<see cref="ShimDeleteRun"/>).
/// </summary>
[Trait("Category", "Integration")]
public sealed class CleanShutdownDeleteTests
{
    [Theory]
    [InlineData("containerd-shim-wasmtime-v1")]
    [InlineData("containerd-shim-wasmtimed-v1")]
    public async Task Delete_after_a_clean_shutdown_is_answered_before_dotnet_starts(string shim) =>
        await ShimDeleteRun.AssertAnsweredBeforeDotnetAsync(Path.Combine(await ShimBinary.DirAsync(), shim));
}
