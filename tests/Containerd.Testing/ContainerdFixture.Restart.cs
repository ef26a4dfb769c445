namespace Containerd.Testing;

public partial class ContainerdFixture
{
    /// <summary>
    /// Stops containerd (SIGTERM) and starts it again on the same root, state, config and socket, with
    /// <see cref="ContainerdOptions.Environment"/> as it is now: pass a mutable dictionary in the options to change
    /// the environment the shims inherit. Images, content and containers survive; running tasks do not. The previous
    /// log is kept as <c>containerd.log.1</c>.
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await StopContainerdAsync().ConfigureAwait(false);
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _containerd?.Dispose();
        _containerd = null;
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
            if (File.Exists(LogPath))
            {
                File.Move(LogPath, LogPath + ".1", overwrite: true);
            }
        }
        await StartCoreAsync(cancellationToken).ConfigureAwait(false);
    }
}
