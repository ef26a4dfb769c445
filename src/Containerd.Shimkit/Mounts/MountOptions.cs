namespace Containerd.Shimkit.Mounts;

/// <summary>
/// fstab-style mount options split the way mount(8) does: names the kernel knows as flags become
/// <see cref="Flags"/>, everything else is passed to the filesystem as the comma-separated <see cref="Data"/>.
/// </summary>
internal sealed record MountOptions(ulong Flags, ulong PropagationFlags, string Data)
{
    /// <summary>MS_RDONLY.</summary>
    public const ulong ReadOnly = 1;
    /// <summary>MS_REMOUNT.</summary>
    public const ulong Remount = 32;
    /// <summary>MS_BIND.</summary>
    public const ulong Bind = 4096;
    /// <summary>MS_REC.</summary>
    public const ulong Recursive = 16384;

    private static readonly Dictionary<string, (bool Clear, ulong Flag)> FlagOptions = new()
    {
        ["async"] = (true, 16),
        ["atime"] = (true, 1024),
        ["bind"] = (false, Bind),
        ["defaults"] = (false, 0),
        ["dev"] = (true, 4),
        ["diratime"] = (true, 2048),
        ["dirsync"] = (false, 128),
        ["exec"] = (true, 8),
        ["mand"] = (false, 64),
        ["noatime"] = (false, 1024),
        ["nodev"] = (false, 4),
        ["nodiratime"] = (false, 2048),
        ["noexec"] = (false, 8),
        ["nomand"] = (true, 64),
        ["norelatime"] = (true, 1 << 21),
        ["nostrictatime"] = (true, 1 << 24),
        ["nosuid"] = (false, 2),
        ["rbind"] = (false, Bind | Recursive),
        ["relatime"] = (false, 1 << 21),
        ["remount"] = (false, Remount),
        ["ro"] = (false, ReadOnly),
        ["rw"] = (true, ReadOnly),
        ["strictatime"] = (false, 1 << 24),
        ["suid"] = (true, 2),
        ["sync"] = (false, 16),
    };

    private static readonly Dictionary<string, ulong> PropagationOptions = new()
    {
        ["private"] = 1 << 18,
        ["rprivate"] = (1 << 18) | Recursive,
        ["shared"] = 1 << 20,
        ["rshared"] = (1 << 20) | Recursive,
        ["slave"] = 1 << 19,
        ["rslave"] = (1 << 19) | Recursive,
        ["unbindable"] = 1 << 17,
        ["runbindable"] = (1 << 17) | Recursive,
    };

    /// <summary>Whether the options ask for a bind mount.</summary>
    public bool IsBind => (Flags & Bind) != 0;

    /// <summary>Splits <paramref name="options"/> into flags, propagation flags and filesystem data.</summary>
    public static MountOptions Parse(IEnumerable<string> options)
    {
        ulong flags = 0;
        ulong propagation = 0;
        var data = new List<string>();
        foreach (var option in options)
        {
            if (FlagOptions.TryGetValue(option, out var f))
            {
                flags = f.Clear ? flags & ~f.Flag : flags | f.Flag;
            }
            else if (PropagationOptions.TryGetValue(option, out var p))
            {
                propagation |= p;
            }
            else if (option.Length > 0)
            {
                data.Add(option);
            }
        }
        return new MountOptions(flags, propagation, string.Join(',', data));
    }
}
