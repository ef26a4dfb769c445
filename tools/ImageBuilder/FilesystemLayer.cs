using System.IO.Compression;

namespace ImageBuilder;

/// <summary>
/// A filesystem layer: a tar of files, directories and symlinks. Parent directories are added (0755) when not
/// listed, and entries are written sorted by path with fixed headers, so the same entries give the same bytes.
/// </summary>
public sealed class FilesystemLayer : Layer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="entries">The entries; a path may appear only once.</param>
    /// <param name="gzip">Compress the layer; uncompressed layers are the default because they do not depend on the zlib version.</param>
    /// <exception cref="ArgumentException">Two entries have the same path.</exception>
    public FilesystemLayer(IEnumerable<LayerEntry> entries, bool gzip = false)
    {
        Entries = entries.ToList();
        Gzip = gzip;
        var duplicate = Entries.GroupBy(e => e.Path, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"layer path '{duplicate.Key}' is listed more than once", nameof(entries));
        }
    }

    /// <summary>The entries as given.</summary>
    public IReadOnlyList<LayerEntry> Entries { get; }

    /// <summary>Whether the layer is gzip-compressed.</summary>
    public bool Gzip { get; }

    internal override LayerBlob Build()
    {
        var tar = BuildTar();
        if (!Gzip)
        {
            return new LayerBlob(tar, MediaTypes.Layer, Digest.Sha256(tar));
        }
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(tar);
        }
        return new LayerBlob(compressed.ToArray(), MediaTypes.LayerGzip, Digest.Sha256(tar));
    }

    private byte[] BuildTar()
    {
        var byPath = new SortedDictionary<string, LayerEntry>(StringComparer.Ordinal);
        foreach (var entry in Entries)
        {
            byPath[entry.Path] = entry;
        }
        foreach (var entry in Entries)
        {
            // Extractors create missing parents with their own idea of owner and mode; listing them pins both.
            for (var slash = entry.Path.LastIndexOf('/'); slash > 0; slash = entry.Path.LastIndexOf('/', slash - 1))
            {
                var parent = entry.Path[..slash];
                if (!byPath.TryGetValue(parent, out var existing))
                {
                    byPath[parent] = LayerEntry.Directory(parent);
                }
                else if (existing is not DirectoryEntry)
                {
                    throw new ArgumentException($"layer path '{parent}' is not a directory but '{entry.Path}' is inside it");
                }
            }
        }

        using var output = new MemoryStream();
        using (var writer = DeterministicTar.Create(output))
        {
            foreach (var entry in byPath.Values)
            {
                switch (entry)
                {
                    case FileEntry file when file.HostPath is not null:
                        DeterministicTar.WriteFile(writer, file.Path, HostFiles.Read(file.HostPath, $"file for {file.Path}"),
                            file.Mode ?? HostFiles.DefaultMode(file.HostPath));
                        break;
                    case FileEntry file:
                        DeterministicTar.WriteFile(writer, file.Path, file.Content!, file.Mode ?? Modes.File);
                        break;
                    case DirectoryEntry directory:
                        DeterministicTar.WriteDirectory(writer, directory.Path, directory.Mode);
                        break;
                    case SymlinkEntry link:
                        DeterministicTar.WriteSymlink(writer, link.Path, link.Target);
                        break;
                }
            }
        }
        return output.ToArray();
    }
}
