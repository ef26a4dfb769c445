using System.Runtime.InteropServices;
using System.Text;
using Containerd.Shimkit.Oci;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Both ends of <see cref="InstanceSetupPlan.Fd"/>: the shim writes the plan into a memory file the instance process
/// inherits as fd 5; the native constructor reads it, and leaves config.json open on the same fd with the rootfs as
/// the working directory, because the container's user may not be able to search the bundle (mode 0700, root's).
/// </summary>
internal static partial class InstanceSetupFd
{
    private const uint MFD_CLOEXEC = 1;
    private const int F_GETFD = 1;

    /// <summary>Shim side: a close-on-exec memory file holding <paramref name="plan"/>.</summary>
    public static SafeFileHandle Create(string plan)
    {
        var fd = memfd_create("wasm-instance-setup", MFD_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"memfd_create: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        // The constructor reads with pread from offset 0, so the file position does not matter.
        RandomAccess.Write(handle, Encoding.UTF8.GetBytes(plan), 0);
        return handle;
    }

    /// <summary>
    /// Instance side: the spec the constructor left on fd 5, or null when no plan was given (the constructor did
    /// nothing and the bundle is read as usual).
    /// </summary>
    public static Spec? ReadSpec()
    {
        // Only the constructor leaves config.json there; without a plan the runtime may own fd 5 for itself.
        if (fcntl(InstanceSetupPlan.Fd, F_GETFD) < 0
            || Path.GetFileName(new FileInfo($"/proc/self/fd/{InstanceSetupPlan.Fd}").LinkTarget) != "config.json")
        {
            return null;
        }
        using var handle = new SafeFileHandle(InstanceSetupPlan.Fd, ownsHandle: true);
        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return Spec.Parse(buffer.ToArray(), "config.json");
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd);
}
