using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Containerd.Shimkit.Cgroups;

/// <summary>
/// What a cgroup's memory is charged, in bytes, as its <c>memory.stat</c> and usage file (<c>memory.usage_in_bytes</c>
/// on v1, <c>memory.current</c> on v2) say. Read through descriptors opened beforehand
/// (<see cref="Cgroup.OpenMemoryFiles"/>), so a process that can no longer reach <c>/sys/fs/cgroup</c> (after a
/// pivot_root, or a change of user) can still measure the cgroup it is in.
/// </summary>
/// <param name="Usage">Everything charged: anonymous memory, page cache, shared memory and kernel memory.</param>
/// <param name="Anon">Anonymous memory (v1's <c>rss</c>, v2's <c>anon</c>).</param>
/// <param name="File">Page cache on the file LRU lists (<c>active_file</c> + <c>inactive_file</c>): file data and
/// mapped executables, which the kernel drops or writes back when the cgroup reaches its limit, before it OOM-kills.</param>
public readonly partial record struct MemoryCharge(ulong Usage, ulong Anon, ulong File)
{
    // statfs(2) f_type of cgroupfs and cgroup2fs.
    private const long CgroupMagic = 0x27e0eb;
    private const long Cgroup2Magic = 0x63677270;

    /// <summary>What the cgroup cannot give back under pressure without an OOM kill: the usage less the file LRU
    /// pages (this includes shared memory and kernel memory, which are not on those lists).</summary>
    public ulong Unreclaimable => Usage > File ? Usage - File : 0;

    /// <summary>The rest of the usage: kernel memory (page tables, stacks, slab), shared memory and the like.</summary>
    public ulong Other => Usage > Anon + File ? Usage - Anon - File : 0;

    /// <summary>The figures from the text of <c>memory.stat</c> and of the usage file, on v1 or v2 (told apart by the
    /// fields: v1 has <c>total_</c> hierarchical sums, v2 an <c>anon</c> field).</summary>
    public static MemoryCharge Parse(string stat, string usage)
    {
        var fields = new Dictionary<string, ulong>(StringComparer.Ordinal);
        foreach (var line in stat.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var space = line.IndexOf(' ');
            if (space > 0 && ulong.TryParse(line.AsSpan(space + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                fields[line[..space]] = value;
            }
        }
        // A v1 leaf's own figures equal its totals; a cgroup with children counts theirs only in the totals.
        ulong Field(string name) => fields.TryGetValue("total_" + name, out var total) ? total : fields.GetValueOrDefault(name);
        var anon = fields.ContainsKey("anon") ? fields["anon"] : Field("rss");
        return new MemoryCharge(
            ulong.TryParse(usage.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? u : 0,
            anon,
            Field("active_file") + Field("inactive_file"));
    }

    /// <summary>
    /// Reads the charge through inherited descriptors of <c>memory.stat</c> (<paramref name="statFd"/>) and the usage
    /// file (<paramref name="usageFd"/>), with pread from offset 0 (a cgroup file is produced afresh by each read from
    /// the start). Null when either descriptor is not open or not a cgroup file: the caller was not given them.
    /// </summary>
    public static MemoryCharge? Read(int statFd, int usageFd)
    {
        if (ReadCgroupFile(statFd) is not { } stat || ReadCgroupFile(usageFd) is not { } usage)
        {
            return null;
        }
        return Parse(stat, usage);
    }

    /// <summary>The text of the cgroup file open at <paramref name="fd"/> (e.g. all of <c>memory.stat</c>, for a
    /// trace), or null when it is not open or not a cgroup file.</summary>
    public static string? ReadCgroupFile(int fd)
    {
        unsafe
        {
            var fs = stackalloc long[16];
            if (FStatFs(fd, fs) != 0 || (fs[0] != CgroupMagic && fs[0] != Cgroup2Magic))
            {
                return null;
            }
        }
        var buffer = new byte[16 * 1024];
        var length = 0;
        while (true)
        {
            var n = ReadAt(fd, buffer, length);
            if (n < 0)
            {
                return null;
            }
            if (n == 0)
            {
                return Encoding.ASCII.GetString(buffer, 0, length);
            }
            length += (int)n;
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
        }
    }

    /// <summary>The figures in MiB with one decimal, for traces and messages.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Mib(Unreclaimable)} MiB unreclaimable of {Mib(Usage)} MiB charged (anon {Mib(Anon)}, file {Mib(File)}, other {Mib(Other)})");

    private static string Mib(ulong bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    private static unsafe nint ReadAt(int fd, byte[] buffer, int offset)
    {
        fixed (byte* p = buffer)
        {
            return PRead(fd, p + offset, (nuint)(buffer.Length - offset), offset);
        }
    }

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static unsafe partial int FStatFs(int fd, long* buf);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static unsafe partial nint PRead(int fd, byte* buffer, nuint count, long offset);
}
