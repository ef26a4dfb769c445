using System.Formats.Tar;

namespace ImageBuilder;

/// <summary>
/// Writes tar entries whose headers depend only on the entry itself: a fixed modification time,
/// owner 0:0 with no user or group names. Identical inputs then give byte-identical archives.
/// </summary>
internal static class DeterministicTar
{
    /// <summary>The modification time of every entry: the Unix epoch (as SOURCE_DATE_EPOCH=0 would give).</summary>
    public static readonly DateTimeOffset Epoch = DateTimeOffset.UnixEpoch;

    public static TarWriter Create(Stream stream) => new(stream, TarEntryFormat.Ustar, leaveOpen: true);

    public static void WriteFile(TarWriter writer, string name, byte[] content, UnixFileMode mode)
    {
        var entry = New(TarEntryType.RegularFile, name, mode);
        entry.DataStream = new MemoryStream(content, writable: false);
        writer.WriteEntry(entry);
    }

    public static void WriteDirectory(TarWriter writer, string name, UnixFileMode mode) =>
        writer.WriteEntry(New(TarEntryType.Directory, name.EndsWith('/') ? name : name + "/", mode));

    public static void WriteSymlink(TarWriter writer, string name, string target)
    {
        var entry = New(TarEntryType.SymbolicLink, name, (UnixFileMode)0b111_111_111);
        entry.LinkName = target;
        writer.WriteEntry(entry);
    }

    private static UstarTarEntry New(TarEntryType type, string name, UnixFileMode mode) => new(type, name)
    {
        Mode = mode,
        ModificationTime = Epoch,
        Uid = 0,
        Gid = 0,
        UserName = string.Empty,
        GroupName = string.Empty,
    };
}
