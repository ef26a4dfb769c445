namespace Ttrpc;

/// <summary>Handlers by service and method name, as ttrpc requests carry them separately.</summary>
internal sealed class ServiceRegistry
{
    private readonly Dictionary<string, Dictionary<string, ServerMethodHandler>> _services = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public void Add(string service, string method, ServerMethodHandler handler)
    {
        lock (_lock)
        {
            if (!_services.TryGetValue(service, out Dictionary<string, ServerMethodHandler>? methods))
            {
                methods = new Dictionary<string, ServerMethodHandler>(StringComparer.Ordinal);
                _services.Add(service, methods);
            }

            if (!methods.TryAdd(method, handler))
            {
                throw new InvalidOperationException($"/{service}/{method} is already registered");
            }
        }
    }

    public ServerMethodHandler? Find(string service, string method)
    {
        // Registration happens before StartAsync; lookups afterwards only read.
        return _services.TryGetValue(service, out Dictionary<string, ServerMethodHandler>? methods)
            && methods.TryGetValue(method, out ServerMethodHandler? handler) ? handler : null;
    }
}
