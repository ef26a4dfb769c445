using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Containerd.Shimkit.Oci;
using Containerd.Shimkit.Seccomp;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>
/// Both ends of <see cref="InstanceProcess.SeccompFd"/>: the shim compiles <c>linux.seccomp</c> at Create and hands
/// the instance process the compiled profile in a memory file on fd 6; the instance process installs it for all its
/// threads as the last step before the guest runs, so that everything before (the module's compilation, containerd's
/// gRPC API for wasm layers, the engine's setup) is not judged by a profile written for the guest.
/// </summary>
internal static partial class InstanceSeccomp
{
    // The instance side recognises its fd by this name: without a profile, fd 6 may be any descriptor of the runtime.
    private const string MemfdName = "wasm-instance-seccomp";
    private const uint MFD_CLOEXEC = 1;

    /// <summary>
    /// Shim side: a close-on-exec memory file with the compiled profile of <paramref name="spec"/>, or null when the
    /// spec has none. A profile that does not compile fails here, before anything is spawned.
    /// </summary>
    /// <exception cref="ShimException">The profile is malformed or unsupported (the field is named).</exception>
    public static SafeFileHandle? Create(Spec spec)
    {
        if (spec.Linux?.Seccomp is not { } profile)
        {
            return null;
        }
        var started = Stopwatch.GetTimestamp();
        var filter = SeccompCompiler.Compile(profile);
        ShimTrace.Mark(string.Create(CultureInfo.InvariantCulture,
            $"server: Create: seccomp compiled, {filter.InstructionCount} instructions in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.000} ms"));
        var fd = memfd_create(MemfdName, MFD_CLOEXEC);
        if (fd < 0)
        {
            throw new IOException($"memfd_create: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        // Read with pread from offset 0 by the child, so the file position does not matter.
        RandomAccess.Write(handle, filter.ToBytes(), 0);
        return handle;
    }

    /// <summary>
    /// Instance side: reads the profile on fd 6 when the shim passed one, and closes the fd; null when none was
    /// passed. Called first thing, while <c>/proc</c> is still the host's (after the pivot the container may have
    /// none, and a profile must never be taken for absent because of that).
    /// </summary>
    /// <exception cref="ShimException">The profile on fd 6 is unreadable.</exception>
    public static SeccompFilter? Take()
    {
        if (!IsGiven())
        {
            return null;
        }
        try
        {
            using var handle = new SafeFileHandle(InstanceProcess.SeccompFd, ownsHandle: true);
            var bytes = new byte[RandomAccess.GetLength(handle)];
            var read = 0;
            while (read < bytes.Length && RandomAccess.Read(handle, bytes.AsSpan(read), read) is var n and > 0)
            {
                read += n;
            }
            return SeccompFilter.Parse(bytes.AsSpan(0, read));
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw new ShimException(Grpc.Core.StatusCode.Internal, $"instance: reading the seccomp profile on fd {InstanceProcess.SeccompFd}: {e.Message}");
        }
    }

    /// <summary>
    /// Instance side: installs <paramref name="filter"/> (when there is one) for every thread. Returns false after
    /// writing the reason on stderr (the container's) when it could not be installed: the guest must not run then.
    /// </summary>
    public static bool Install(SeccompFilter? filter)
    {
        if (filter is null)
        {
            return true;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            filter.Install();
            ShimTrace.Mark(string.Create(CultureInfo.InvariantCulture,
                $"instance: seccomp installed in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.000} ms"));
            return true;
        }
        catch (Exception e) when (e is ShimException or IOException or InvalidDataException)
        {
            Console.Error.WriteLine($"instance: installing the seccomp profile: {e.Message}");
            return false;
        }
    }

    private static bool IsGiven() =>
        new FileInfo($"/proc/self/fd/{InstanceProcess.SeccompFd}").LinkTarget is { } target
        && target.StartsWith($"/memfd:{MemfdName}", StringComparison.Ordinal);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);
}
