using Containerd.Services.Leases.V1;
using Grpc.Core;

namespace Containerd.Api.Client;

/// <summary>
/// A lease held for the lifetime of this object: resources created through
/// <see cref="Client"/> stay alive until it is disposed, then garbage collection may take them.
/// </summary>
public sealed class ContainerdLease : IAsyncDisposable
{
    private readonly ContainerdClient _owner;
    private int _disposed;

    private ContainerdLease(ContainerdClient owner, Lease lease)
    {
        _owner = owner;
        Id = lease.Id;
        Labels = lease.Labels;
        Client = owner.WithLease(lease.Id);
    }

    /// <summary>The lease id, as sent in the <c>containerd-lease</c> header.</summary>
    public string Id { get; }

    /// <summary>The labels containerd stored on the lease.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; }

    /// <summary>A view of the creating client whose calls run under this lease.</summary>
    public ContainerdClient Client { get; }

    /// <summary>
    /// Creates a lease. A lease with an <paramref name="expiresAfter"/> also disappears on
    /// its own, which protects content if this process dies before disposing it.
    /// </summary>
    /// <param name="client">The client (and namespace) to create the lease in.</param>
    /// <param name="id">The lease id; <c>null</c> generates a unique one.</param>
    /// <param name="labels">Extra labels to store on the lease.</param>
    /// <param name="expiresAfter">Sets containerd's <c>containerd.io/gc.expire</c> label.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public static async Task<ContainerdLease> CreateAsync(
        ContainerdClient client,
        string? id = null,
        IEnumerable<KeyValuePair<string, string>>? labels = null,
        TimeSpan? expiresAfter = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var request = new CreateRequest { Id = id ?? $"dotnet-{Guid.NewGuid():N}" };
        if (labels is not null)
        {
            foreach (var (key, value) in labels)
            {
                request.Labels[key] = value;
            }
        }

        if (expiresAfter is { } expiry)
        {
            request.Labels["containerd.io/gc.expire"] = DateTimeOffset.UtcNow.Add(expiry).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        }

        var response = await client.Leases.CreateAsync(request, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new ContainerdLease(client, response.Lease);
    }

    /// <summary>Deletes the lease; a lease already gone (expired or deleted elsewhere) is not an error.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _owner.Leases.DeleteAsync(new DeleteRequest { Id = Id }).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
    }
}
