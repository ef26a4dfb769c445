using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Containerd.Api.Client;
using Containerd.Events;
using Containerd.Services.Content.V1;
using Containerd.Services.Images.V1;
using Containerd.Services.Leases.V1;
using Containerd.Services.Namespaces.V1;
using Containerd.Services.Snapshots.V1;
using Containerd.Services.Tasks.V1;
using Containerd.Testing;
using Containerd.Types;
using Grpc.Core;
using Xunit;
using ContentInfoRequest = Containerd.Services.Content.V1.InfoRequest;

namespace Foundation.Tests;

/// <summary>
/// The containerd gRPC client against a private containerd: every service the project relies on,
/// through containerd's own socket, with images built here and tasks run by runc.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ContainerdClientTests : IClassFixture<ContainerdClientFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly ContainerdFixture _containerd;

    public ContainerdClientTests(ContainerdClientFixture containerd) => _containerd = containerd;

    private ContainerdClient Connect() => new(_containerd.Address, _containerd.Namespace);

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Version_names_the_containerd_behind_the_socket()
    {
        using var client = Connect();

        var version = await client.Version.VersionAsync(new Google.Protobuf.WellKnownTypes.Empty());

        Assert.NotEmpty(version.Version);
        Assert.Contains(" " + version.Version.TrimStart('v') + " ", _containerd.BinaryVersion + " ");
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Namespaces_are_created_listed_labelled_and_deleted()
    {
        using var client = Connect();
        var name = "cl-" + Guid.NewGuid().ToString("N")[..8];
        var created = new Namespace { Name = name, Labels = { ["owner"] = "client-tests" } };

        await client.Namespaces.CreateAsync(new CreateNamespaceRequest { Namespace = created });
        try
        {
            var listed = await client.Namespaces.ListAsync(new ListNamespacesRequest());
            Assert.Contains(listed.Namespaces, n => n.Name == name);
            var fetched = await client.Namespaces.GetAsync(new GetNamespaceRequest { Name = name });
            Assert.Equal("client-tests", fetched.Namespace.Labels["owner"]);
        }
        finally
        {
            await client.Namespaces.DeleteAsync(new DeleteNamespaceRequest { Name = name });
        }

        // Get is no existence check (containerd answers it with empty labels for any name), so list again.
        var after = await client.Namespaces.ListAsync(new ListNamespacesRequest());
        Assert.DoesNotContain(after.Namespaces, n => n.Name == name);
    }

    [Fact]
    public async Task Every_call_carries_the_clients_namespace_unless_the_call_sets_its_own()
    {
        using var client = Connect();
        var other = client.WithNamespace("cl-" + Guid.NewGuid().ToString("N")[..8]);
        var image = new Image
        {
            Name = "example.com/client-tests/namespaced:" + Guid.NewGuid().ToString("N")[..8],
            Target = new ContentDescriptor
            {
                MediaType = "application/vnd.oci.image.manifest.v1+json",
                Digest = "sha256:" + new string('0', 64),
                Size = 2,
            },
        };

        await other.Images.CreateAsync(new CreateImageRequest { Image = image });
        try
        {
            Assert.Contains((await other.Images.ListAsync(new ListImagesRequest())).Images, i => i.Name == image.Name);
            Assert.DoesNotContain((await client.Images.ListAsync(new ListImagesRequest())).Images, i => i.Name == image.Name);

            var perCall = new Metadata { { ContainerdMetadata.NamespaceHeader, other.Namespace } };
            var overridden = await client.Images.GetAsync(new GetImageRequest { Name = image.Name }, perCall);
            Assert.Equal(image.Target.Digest, overridden.Image.Target.Digest);
        }
        finally
        {
            await other.Images.DeleteAsync(new DeleteImageRequest { Name = image.Name });
            await client.Namespaces.DeleteAsync(new DeleteNamespaceRequest { Name = other.Namespace });
        }
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Imported_image_manifest_and_config_are_read_from_the_content_store()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);
        using var client = Connect();

        var manifest = await client.GetImageManifestAsync(busybox.Name, new Platform { Os = "linux", Architecture = "amd64" });
        Assert.Equal(busybox.ManifestDigest, manifest.Descriptor.Digest);

        var manifestBytes = await client.Content.ReadBlobAsync(manifest.Descriptor.Digest);
        Assert.Equal(manifest.Descriptor.Size, manifestBytes.Length);
        Assert.Equal(manifest.Descriptor.Digest, Sha256Digest(manifestBytes));
        using (var raw = JsonDocument.Parse(manifestBytes))
        {
            Assert.Equal(OciMediaTypes.ImageManifest, raw.RootElement.GetProperty("mediaType").GetString());
        }

        Assert.Equal("application/vnd.oci.image.config.v1+json", manifest.Config.MediaType);
        var layers = manifest.Layers;
        Assert.NotEmpty(layers);
        Assert.All(layers, l => Assert.StartsWith("application/vnd.oci.image.layer.v1.tar", l.MediaType));

        var configBytes = await client.Content.ReadBlobAsync(manifest.Config.Digest);
        using var config = JsonDocument.Parse(configBytes);
        Assert.Equal("linux", config.RootElement.GetProperty("os").GetString());
        Assert.Equal("amd64", config.RootElement.GetProperty("architecture").GetString());
        Assert.Equal(layers.Count, config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").GetArrayLength());

        // Every layer is in the store with the size the manifest claims.
        foreach (var layer in layers)
        {
            var info = await client.Content.InfoAsync(new ContentInfoRequest { Digest = layer.Digest });
            Assert.Equal(layer.Size, info.Info.Size);
        }
    }

    [Fact]
    public async Task Image_index_resolves_to_the_manifest_for_the_requested_platform()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);
        using var client = Connect();
        var amd64 = (await client.GetImageManifestAsync(busybox.Name)).Descriptor;
        var index = Encoding.UTF8.GetBytes($$$"""
            {"schemaVersion":2,"mediaType":"{{{OciMediaTypes.ImageIndex}}}","manifests":[
              {"mediaType":"{{{OciMediaTypes.ImageManifest}}}","digest":"sha256:{{{new string('1', 64)}}}","size":1,"platform":{"os":"linux","architecture":"arm64"}},
              {"mediaType":"{{{OciMediaTypes.ImageManifest}}}","digest":"{{{amd64.Digest}}}","size":{{{amd64.Size}}},"platform":{"os":"linux","architecture":"amd64"}}]}
            """);
        var name = "example.com/client-tests/index:" + Guid.NewGuid().ToString("N")[..8];

        await using var lease = await ContainerdLease.CreateAsync(client, expiresAfter: TimeSpan.FromMinutes(10));
        var indexDigest = await lease.Client.Content.WriteBlobAsync(index);
        await client.Images.CreateAsync(new CreateImageRequest
        {
            Image = new Image { Name = name, Target = new ContentDescriptor { MediaType = OciMediaTypes.ImageIndex, Digest = indexDigest, Size = index.Length } },
        });
        try
        {
            var picked = await client.GetImageManifestAsync(name, new Platform { Os = "linux", Architecture = "amd64" });
            Assert.Equal(amd64.Digest, picked.Descriptor.Digest);
            Assert.NotEmpty(picked.Layers);
            await Assert.ThrowsAsync<InvalidDataException>(() => client.GetImageManifestAsync(name, new Platform { Os = "wasip1", Architecture = "wasm" }));
        }
        finally
        {
            await client.Images.DeleteAsync(new DeleteImageRequest { Name = name });
        }
    }

    [Fact]
    public async Task Imported_image_is_unpacked_into_committed_snapshots()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);
        using var client = Connect();

        using var call = client.Snapshots.List(new ListSnapshotsRequest { Snapshotter = "overlayfs" });
        var snapshots = new List<Containerd.Services.Snapshots.V1.Info>();
        await foreach (var page in call.ResponseStream.ReadAllAsync())
        {
            snapshots.AddRange(page.Info);
        }

        Assert.Contains(snapshots, s => s.Kind == Kind.Committed);
        var usage = await client.Snapshots.UsageAsync(new UsageRequest { Snapshotter = "overlayfs", Key = snapshots.First(s => s.Kind == Kind.Committed).Name });
        Assert.True(usage.Size > 0, $"usage {usage.Size}");
    }

    [Fact]
    public async Task Blob_written_with_labels_under_a_lease_reads_back_with_its_labels()
    {
        using var client = Connect();
        var data = RandomNumberGenerator.GetBytes(3 * ContentStoreExtensions.WriteChunkSize / 2);
        var labels = new Dictionary<string, string> { ["example.com/purpose"] = "client-test", ["example.com/run"] = Guid.NewGuid().ToString("N") };

        string digest;
        await using (var lease = await ContainerdLease.CreateAsync(client, expiresAfter: TimeSpan.FromMinutes(10)))
        {
            digest = await lease.Client.Content.WriteBlobAsync(data, labels);
            Assert.Equal(Sha256Digest(data), digest);

            var info = (await client.Content.InfoAsync(new ContentInfoRequest { Digest = digest })).Info;
            Assert.Equal(data.Length, info.Size);
            Assert.Equal(labels["example.com/run"], info.Labels["example.com/run"]);
            Assert.Equal(labels["example.com/purpose"], info.Labels["example.com/purpose"]);
            Assert.Equal(data, await client.Content.ReadBlobAsync(digest));

            var resources = await client.Leases.ListResourcesAsync(new ListResourcesRequest { Id = lease.Id });
            Assert.Contains(resources.Resources, r => r.Type == "content" && r.Id == digest);

            // Writing the same blob again only updates its labels.
            var again = await lease.Client.Content.WriteBlobAsync(data, new Dictionary<string, string> { ["example.com/again"] = "yes" });
            Assert.Equal(digest, again);
            var relabelled = (await client.Content.InfoAsync(new ContentInfoRequest { Digest = digest })).Info;
            Assert.Equal("yes", relabelled.Labels["example.com/again"]);
            Assert.Equal(labels["example.com/run"], relabelled.Labels["example.com/run"]);
        }

        // Nothing else references the blob, so once the lease is gone it can be deleted. Removing a lease also wakes
        // containerd's garbage collector, which may already have collected the blob: NotFound means just that.
        try
        {
            await client.Content.DeleteAsync(new Containerd.Services.Content.V1.DeleteContentRequest { Digest = digest });
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
        var error = await Assert.ThrowsAsync<RpcException>(async () => await client.Content.ReadBlobAsync(digest));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task Blob_write_to_a_ref_another_writer_holds_is_refused_without_aborting_that_ingest()
    {
        using var client = Connect();
        await using var lease = await ContainerdLease.CreateAsync(client, expiresAfter: TimeSpan.FromMinutes(10));
        var reference = "cl-held-" + Guid.NewGuid().ToString("N")[..8];
        var data = RandomNumberGenerator.GetBytes(4096);

        using (var holder = lease.Client.Content.Write())
        {
            await holder.RequestStream.WriteAsync(new WriteContentRequest { Action = WriteAction.Stat, Ref = reference, Total = data.Length });
            Assert.True(await holder.ResponseStream.MoveNext(CancellationToken.None));
            await holder.RequestStream.WriteAsync(new WriteContentRequest
            {
                Action = WriteAction.Write, Ref = reference, Data = Google.Protobuf.ByteString.CopyFrom(data, 0, 100),
            });
            Assert.True(await holder.ResponseStream.MoveNext(CancellationToken.None));

            // Refused after waiting ContentStoreExtensions.LockedRefPatience for the holder to let go.
            var refused = await Assert.ThrowsAsync<RpcException>(() => lease.Client.Content.WriteBlobAsync(data, reference: reference));
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);

            var status = await client.Content.StatusAsync(new StatusRequest { Ref = reference });
            Assert.Equal(100, status.Status.Offset);
        }

        // The ingest survives its writer (containerd keeps it for resuming), so a later write resumes and completes it.
        var digest = await lease.Client.Content.WriteBlobAsync(data, reference: reference);
        Assert.Equal(data, await client.Content.ReadBlobAsync(digest));
    }

    [Fact]
    public async Task Leases_are_created_listed_and_deleted()
    {
        using var client = Connect();
        var id = "cl-" + Guid.NewGuid().ToString("N")[..8];
        var lease = await ContainerdLease.CreateAsync(client, id, [new("example.com/owner", "client-tests")]);
        Assert.Equal(id, lease.Id);
        Assert.Equal(id, lease.Client.Lease);

        var listed = await client.Leases.ListAsync(new ListRequest { Filters = { $"id=={id}" } });
        var found = Assert.Single(listed.Leases);
        Assert.Equal("client-tests", found.Labels["example.com/owner"]);

        await lease.DisposeAsync();
        Assert.Empty((await client.Leases.ListAsync(new ListRequest { Filters = { $"id=={id}" } })).Leases);
        await lease.DisposeAsync();
    }

    [Fact]
    [Trait("Tier", "Smoke")]
    public async Task Subscription_sees_a_runc_tasks_create_start_exit_and_delete()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);
        using var client = Connect();
        var id = "ev-" + Guid.NewGuid().ToString("N")[..8];
        using var timeout = new CancellationTokenSource(Patience);

        await using var events = await EventSubscription.StartAsync(
            client,
            [EventFilters.All(EventFilters.Namespace(_containerd.Namespace), EventFilters.TopicPrefix("/tasks/"))],
            timeout.Token);
        var run = await _containerd.CtrAsync("run", "--rm", busybox.Name, id, "sh", "-c", "echo out; exit 3");
        Assert.Equal(3, run.ExitCode);
        Assert.Equal("out", run.Stdout.Trim());

        var seen = new List<(string Topic, Google.Protobuf.IMessage? Payload)>();
        bool Record(Envelope e, string topic)
        {
            var payload = e.Decode();
            if (ContainerOf(payload) == id)
            {
                seen.Add((e.Topic, payload));
            }
            return e.Topic == topic && ContainerOf(payload) == id;
        }
        await events.WaitForAsync(e => Record(e, "/tasks/exit"), timeout.Token);

        // containerd 2.1.9's runc shim sometimes exits before it has forwarded its own /tasks/delete (seen here about
        // one run in four, with create/start/exit always delivered): on 2.x a missing delete event is accepted when the
        // API confirms the task is gone. On 1.x the event is required.
        using var deleteWait = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        if (_containerd.Options.IsV2)
        {
            deleteWait.CancelAfter(TimeSpan.FromSeconds(10));
        }
        Envelope? deleted = null;
        try
        {
            deleted = await events.WaitForAsync(e => Record(e, "/tasks/delete"), deleteWait.Token);
        }
        catch (Exception e) when (_containerd.Options.IsV2 && !timeout.IsCancellationRequested
                                  && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            var gone = await Assert.ThrowsAsync<RpcException>(async () => await client.Tasks.GetAsync(new GetRequest { ContainerId = id }));
            Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        }

        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit"], seen.Select(s => s.Topic).Take(3));
        var start = Assert.IsType<TaskStart>(seen[1].Payload);
        var exit = Assert.IsType<TaskExit>(seen[2].Payload);
        Assert.Equal(start.Pid, exit.Pid);
        Assert.Equal(3u, exit.ExitStatus);
        if (deleted is null)
        {
            return;
        }
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], seen.Select(s => s.Topic));
        Assert.Equal(_containerd.Namespace, deleted.Namespace);
        Assert.True(deleted.TryUnpack<TaskDelete>(out var delete));
        Assert.Equal(3u, delete.ExitStatus);
    }

    [Fact]
    public async Task Tasks_Update_changes_a_running_containers_pids_limit()
    {
        var busybox = await TestImages.BuildBusyboxAsync();
        await _containerd.ImportAsync(busybox.TarPath);
        using var client = Connect();
        var id = "up-" + Guid.NewGuid().ToString("N")[..8];
        await _containerd.RunCtrAsync("run", "-d", busybox.Name, id, "sleep", "600");
        try
        {
            var task = (await client.Tasks.GetAsync(new GetRequest { ContainerId = id })).Process;
            Assert.Equal(Containerd.V1.Types.Status.Running, task.Status);

            await client.Tasks.UpdateAsync(new UpdateTaskRequest
            {
                ContainerId = id,
                Resources = RuntimeSpecAny.LinuxResources("""{"pids":{"limit":42}}"""),
            });

            Assert.Equal("42", ReadPidsMax(task.Pid));
        }
        finally
        {
            await RemoveTaskAsync(client, id);
        }
    }

    private static async Task RemoveTaskAsync(ContainerdClient client, string id)
    {
        try
        {
            using var waitTimeout = new CancellationTokenSource(Patience);
            var wait = client.Tasks.WaitAsync(new WaitRequest { ContainerId = id }, cancellationToken: waitTimeout.Token);
            await client.Tasks.KillAsync(new KillRequest { ContainerId = id, Signal = 9, All = true });
            await wait;
            await client.Tasks.DeleteAsync(new DeleteTaskRequest { ContainerId = id });
        }
        finally
        {
            await client.Containers.DeleteAsync(new Containerd.Services.Containers.V1.DeleteContainerRequest { Id = id });
        }
    }

    // The pids limit as the kernel sees it, from the process's own cgroup (v1 pids hierarchy or v2 unified).
    private static string ReadPidsMax(uint pid)
    {
        foreach (var line in File.ReadAllLines($"/proc/{pid}/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts[1].Split(',').Contains("pids"))
            {
                return File.ReadAllText($"/sys/fs/cgroup/pids{parts[2]}/pids.max").Trim();
            }

            if (parts[0] == "0" && parts[1].Length == 0 && File.Exists($"/sys/fs/cgroup{parts[2]}/pids.max"))
            {
                return File.ReadAllText($"/sys/fs/cgroup{parts[2]}/pids.max").Trim();
            }
        }

        throw new InvalidOperationException($"process {pid} has no pids cgroup: {File.ReadAllText($"/proc/{pid}/cgroup")}");
    }

    private static string? ContainerOf(Google.Protobuf.IMessage? payload) => payload switch
    {
        TaskCreate e => e.ContainerId,
        TaskStart e => e.ContainerId,
        TaskExit e => e.ContainerId,
        TaskDelete e => e.ContainerId,
        _ => null,
    };

    private static string Sha256Digest(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
}
