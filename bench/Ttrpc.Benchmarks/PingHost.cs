using Ttrpc.Benchmarks.Ping;

namespace Ttrpc.Benchmarks;

/// <summary>A ttrpc server with <see cref="PingService"/> and a number of client connections to it, in this process.</summary>
public sealed class PingHost : IAsyncDisposable
{
    private readonly string _dir;
    private readonly TtrpcServer _server;
    private readonly TtrpcChannel[] _channels;

    private PingHost(string dir, TtrpcServer server, TtrpcChannel[] channels)
    {
        _dir = dir;
        _server = server;
        _channels = channels;
        Clients = [.. channels.Select(c => new Pinger.PingerClient(c.CreateCallInvoker()))];
    }

    /// <summary>One generated client per connection.</summary>
    public Pinger.PingerClient[] Clients { get; }

    /// <summary>Starts the server and connects <paramref name="connections"/> channels.</summary>
    public static async Task<PingHost> StartAsync(int connections, bool inlineHandlers = false)
    {
        string dir = Directory.CreateTempSubdirectory("ttrpc-bench-").FullName;
        string path = Path.Combine(dir, "ttrpc.sock");
        var server = new TtrpcServer(new TtrpcServerOptions { InlineHandlers = inlineHandlers });
        Pinger.BindService(server.Binder, new PingService());
        server.Listen(path);
        await server.StartAsync();
        var channels = Enumerable.Range(0, connections).Select(_ => new TtrpcChannel(path)).ToArray();
        foreach (TtrpcChannel channel in channels)
        {
            await channel.ConnectAsync();
        }

        return new PingHost(dir, server, channels);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (TtrpcChannel channel in _channels)
        {
            await channel.DisposeAsync();
        }

        await _server.ShutdownAsync();
        Directory.Delete(_dir, recursive: true);
    }
}
