using Ttrpc.Tests.Echo;

namespace Ttrpc.Tests;

/// <summary>A real <see cref="TtrpcServer"/> with <see cref="EchoService"/> on a fresh socket in a temporary directory.</summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly string _dir;

    private EchoServer(string dir, TtrpcServer server, EchoService service)
    {
        _dir = dir;
        Server = server;
        Service = service;
    }

    public TtrpcServer Server { get; private set; }

    public EchoService Service { get; }

    public string SocketPath => Path.Combine(_dir, "ttrpc.sock");

    public static async Task<EchoServer> StartAsync(TtrpcServerOptions? options = null, string? dir = null)
    {
        dir ??= Directory.CreateTempSubdirectory("ttrpc-test-").FullName;
        var service = new EchoService();
        var server = await ServeAsync(Path.Combine(dir, "ttrpc.sock"), service, options);
        return new EchoServer(dir, server, service);
    }

    /// <summary>Stops the server and starts a new one on the same path, as a restarted peer would.</summary>
    public async Task RestartAsync()
    {
        await Server.ShutdownAsync();
        Server = await ServeAsync(SocketPath, Service, null);
    }

    public TtrpcChannel CreateChannel(TtrpcChannelOptions? options = null) => new(SocketPath, options);

    public async ValueTask DisposeAsync()
    {
        await Server.ShutdownAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task<TtrpcServer> ServeAsync(string path, EchoService service, TtrpcServerOptions? options)
    {
        var server = new TtrpcServer(options);
        Echo.Echo.BindService(server.Binder, service);
        server.Listen(path);
        await server.StartAsync();
        return server;
    }
}
