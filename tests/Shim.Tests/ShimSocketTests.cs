using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// The shim's ttrpc socket is containerd's alone: mode 0600 from the moment it exists, and a peer of another uid is
/// dropped by the server even when the file's mode would let it in. The probe connects as nobody, the way any local
/// unprivileged process could.
/// </summary>
[Collection(WasmShimCollection.Name)]
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ShimSocketTests(WasmShimFixture fx)
{
    private const int Nobody = 65534;

    [Fact]
    public async Task Shim_socket_is_0600_and_another_uid_is_refused_even_when_the_mode_is_widened()
    {
        var id = WasmShimFixture.NewId("sock");
        try
        {
            await fx.Containerd.RunCtrAsync("run", "-d", "--runtime", WasmShimFixture.Runtime, fx.DemoImage, id, "/wasi-demo-app.wasm", "daemon");
            await fx.Containerd.WaitForRunningPidAsync(id);
            var bundle = Path.Combine(fx.Containerd.StateDir, "io.containerd.runtime.v2.task", fx.Containerd.Namespace, id);
            var socket = File.ReadAllText(Path.Combine(bundle, "address"))["unix://".Length..];
            Assert.Equal(fx.Containerd.ShimSocketPath(fx.Containerd.Namespace, id), socket);

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
            Assert.Equal(OtherUserProbe.Outcome.Answered, await OtherUserProbe.RunAsync(socket, uid: null));
            Assert.Equal(OtherUserProbe.Outcome.RefusedByMode, await OtherUserProbe.RunAsync(socket, Nobody));

            // A careless chmod by hand: the server's own check (SO_PEERCRED) still drops the peer.
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            Assert.Equal(OtherUserProbe.Outcome.ClosedByServer, await OtherUserProbe.RunAsync(socket, Nobody));
            Assert.Equal(OtherUserProbe.Outcome.Answered, await OtherUserProbe.RunAsync(socket, uid: null));
            Assert.Contains(id, await fx.Containerd.RunCtrAsync("task", "ls"));
        }
        finally
        {
            await fx.Containerd.CtrAsync("task", "delete", "--force", id);
            await fx.Containerd.CtrAsync("container", "delete", id);
        }
    }
}
