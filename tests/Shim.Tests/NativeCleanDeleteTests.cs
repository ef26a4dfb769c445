using System.Text;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The kit's native <c>delete</c> answer (<c>src/Containerd.Shimkit/native/clean_delete.c</c>) on its own, linked
/// with <c>tests/native/clean_delete_main.c</c> (a main that prints "main" and exits 3, as if .NET had started): the
/// bundle is found in every spelling of Go's flag syntax that <c>ShimFlags</c> accepts, or is the working directory,
/// and anything but <c>delete</c> of a bundle with the marker goes on to main. The installed shims are checked the same
/// way by <see cref="CleanShutdownDeleteTests"/>.
/// </summary>
public sealed class NativeCleanDeleteTests(NativeCleanDeleteTests.TestBinary binary) : IClassFixture<NativeCleanDeleteTests.TestBinary>
{
    /// <summary>The constructor and the stand-in main, compiled once for the class; a bundle with the marker
    /// (<c>clean</c>) and one without (<c>dirty</c>) beside it.</summary>
    public sealed class TestBinary : IAsyncLifetime
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("clean-delete-native-").FullName;
        public string Path => System.IO.Path.Combine(Dir, "clean_delete_test");
        public string Clean => System.IO.Path.Combine(Dir, "clean");
        public string Dirty => System.IO.Path.Combine(Dir, "dirty");

        public async Task InitializeAsync()
        {
            Directory.CreateDirectory(Clean);
            Directory.CreateDirectory(Dirty);
            await File.WriteAllBytesAsync(System.IO.Path.Combine(Clean, ShimDeleteRun.CleanShutdownFile), []);
            var build = await ProcessRunner.RunAsync("gcc",
                ["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-o", Path,
                    System.IO.Path.Combine(RepositoryLayout.RepoRoot, "src", "Containerd.Shimkit", "native", "clean_delete.c"),
                    System.IO.Path.Combine(RepositoryLayout.RepoRoot, "tests", "native", "clean_delete_main.c")],
                null, TimeSpan.FromMinutes(2));
            Assert.True(build.Succeeded, build.ToString());
        }

        public Task DisposeAsync()
        {
            Directory.Delete(Dir, recursive: true);
            return Task.CompletedTask;
        }
    }

    [Theory]
    [InlineData("-bundle {clean} delete")]
    [InlineData("--bundle {clean} delete")]
    [InlineData("-bundle={clean} delete")]
    [InlineData("--bundle={clean} delete")]
    [InlineData("-namespace default -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id c1 -debug -bundle {clean} delete")]
    [InlineData("-namespace default -id c1 delete")] // no -bundle: the working directory, which is {clean} here
    [InlineData("-bundle= delete")] // empty: the working directory too, as in ShimDelete.Run
    public async Task Delete_of_a_bundle_with_the_marker_is_answered_without_main(string args)
    {
        var before = DateTimeOffset.UtcNow;
        var (code, stdout, stderr) = await ShimDeleteRun.RunAsync(binary.Path, Split(args), binary.Clean);
        Assert.True(code == 0, $"exit {code}: {stderr}");
        ShimDeleteRun.AssertCleanResponse(stdout, before);
        Assert.Equal("", stderr);
    }

    [Theory]
    [InlineData("-bundle {dirty} delete")] // no marker
    [InlineData("-bundle={dirty} delete")]
    [InlineData("delete")] // run in {dirty}: no marker there
    [InlineData("-bundle {clean} start")] // another action
    [InlineData("-bundle {clean}")] // serving
    [InlineData("-bundle {clean} delete -debug")] // the action is not last: not how containerd runs delete
    [InlineData("-v")]
    public async Task Anything_else_goes_on_to_main(string args)
    {
        var (code, stdout, _) = await ShimDeleteRun.RunAsync(binary.Path, Split(args), binary.Dirty);
        Assert.Equal(3, code);
        Assert.Equal("main\n", Encoding.UTF8.GetString(stdout));
    }

    [Fact]
    public async Task A_bundle_path_longer_than_the_buffer_goes_on_to_main()
    {
        var (code, stdout, _) = await ShimDeleteRun.RunAsync(binary.Path, ["-bundle", "/" + new string('a', 5000), "delete"], binary.Clean);
        Assert.Equal(3, code);
        Assert.Equal("main\n", Encoding.UTF8.GetString(stdout));
    }

    private string[] Split(string args) =>
        args.Replace("{clean}", binary.Clean).Replace("{dirty}", binary.Dirty).Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
