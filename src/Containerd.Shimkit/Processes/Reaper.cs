using System.Runtime.InteropServices;
using System.Text;
using Grpc.Core;

namespace Containerd.Shimkit.Processes;

/// <summary>
/// The one path by which the shim starts and reaps child processes. Children are started with posix_spawn
/// (never System.Diagnostics.Process, whose SIGCHLD handling would race a subreaper) and collected by a single
/// thread blocked in waitid. A pid is registered under <see cref="Gate"/> in the same critical section that
/// spawns it, and exits are dispatched under that lock, so an exit can never arrive before its registration.
/// </summary>
public static unsafe class Reaper
{
    /// <summary>Guards the registry, dispatch of exits and kill(2) on registered pids.</summary>
    internal static readonly Lock Gate = new();

    private static readonly Dictionary<int, ChildProcess> Registered = [];
    private static readonly AutoResetEvent ChildAdded = new(false);
    private static Thread? _thread;
    private static volatile bool _reapOrphans;
    // Exits of adopted processes nobody had claimed yet, kept only while an adoption is pending (see BeginAdoption).
    private static readonly Dictionary<int, ExitStatus> UnclaimedExits = [];
    private static int _pendingAdoptions;

    /// <summary>
    /// Also reap children that were not spawned here: the processes a child subreaper adopts. Only the shim's
    /// server turns this on; in a process that also uses System.Diagnostics.Process (a test host) those children
    /// belong to the runtime and are left alone.
    /// </summary>
    internal static bool ReapOrphans
    {
        get => _reapOrphans;
        set
        {
            _reapOrphans = value;
            ChildAdded.Set();
        }
    }

    /// <summary>
    /// Makes this process a child subreaper that reaps every child, spawned here or adopted: what a process running
    /// runc containers needs, since the init process <c>runc create</c> leaves behind is re-parented to it (the shim
    /// server, the shared-mode daemon). Not for a process whose other children belong to System.Diagnostics.Process.
    /// </summary>
    public static void BecomeSubreaper()
    {
        if (Libc.Prctl(Libc.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        {
            ShimLog.Warn($"PR_SET_CHILD_SUBREAPER: {Libc.StrError(Marshal.GetLastPInvokeError())}");
        }
        ReapOrphans = true;
    }

    /// <summary>Starts a child process as <paramref name="spec"/> describes and registers it for reaping.</summary>
    /// <exception cref="ShimException">posix_spawn failed (NotFound when the executable does not exist).</exception>
    public static ChildProcess Spawn(ProcessStartSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Args.Count == 0)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"spawn {spec.Path}: empty argument vector");
        }
        ChildProcess child;
        lock (Gate)
        {
            EnsureStarted();
            var pid = SpawnNative(spec);
            child = new ChildProcess(pid);
            Registered[pid] = child;
        }
        ChildAdded.Set();
        return child;
    }

    /// <summary>
    /// Opens a window in which an orphan that this process (a child subreaper) adopts can be claimed with
    /// <see cref="Adoption.Claim"/>: an OCI runtime's <c>create</c> leaves the container's init process behind,
    /// reparented here, and its pid is only known once <c>create</c> exited. An exit of an unclaimed orphan that
    /// happens inside the window is remembered for the claim instead of being dropped. Dispose closes the window.
    /// </summary>
    public static Adoption BeginAdoption()
    {
        lock (Gate)
        {
            EnsureStarted();
            _pendingAdoptions++;
        }
        return new Adoption();
    }

    /// <summary>A pending adoption (see <see cref="BeginAdoption"/>).</summary>
    public sealed class Adoption : IDisposable
    {
        private bool _disposed;

        internal Adoption()
        {
        }

        /// <summary>
        /// Registers <paramref name="pid"/>, a child of this process (usually one it adopted), for reaping, and
        /// returns it as a <see cref="ChildProcess"/> whose <see cref="ChildProcess.Exited"/> completes when it is
        /// collected, or at once if it already was within this window.
        /// </summary>
        /// <exception cref="ShimException">FailedPrecondition when <paramref name="pid"/> is not a child of this
        /// process (it was reparented elsewhere because this process is not a child subreaper).</exception>
        public ChildProcess Claim(int pid)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ChildProcess child;
            lock (Gate)
            {
                if (Registered.TryGetValue(pid, out var existing))
                {
                    return existing;
                }
                child = new ChildProcess(pid);
                if (UnclaimedExits.Remove(pid, out var status))
                {
                    child.SetExited(status);
                    return child;
                }
                Libc.SigInfo info = default;
                if (Libc.WaitId(Libc.P_PID, pid, &info, Libc.WEXITED | Libc.WNOHANG | Libc.WNOWAIT) != 0
                    && Marshal.GetLastPInvokeError() == Libc.ECHILD)
                {
                    throw new ShimException(StatusCode.FailedPrecondition,
                        $"process {pid} is not a child of the shim (pid {Environment.ProcessId}): is the shim a child subreaper?");
                }
                Registered[pid] = child;
            }
            ChildAdded.Set();
            return child;
        }

        /// <summary>Closes the window; remembered exits are forgotten once no adoption is pending.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            lock (Gate)
            {
                if (--_pendingAdoptions == 0)
                {
                    UnclaimedExits.Clear();
                }
            }
        }
    }

    private static void EnsureStarted()
    {
        if (_thread is not null)
        {
            return;
        }
        _thread = new Thread(Loop) { IsBackground = true, Name = "shim reaper" };
        _thread.Start();
    }

    private static void Loop()
    {
        while (true)
        {
            Libc.SigInfo info = default;
            // WNOWAIT: look at the exited child without collecting it, so children owned by someone else in this
            // process are left for their owner.
            if (Libc.WaitId(Libc.P_ALL, 0, &info, Libc.WEXITED | Libc.WNOWAIT) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.ECHILD)
                {
                    ChildAdded.WaitOne();
                }
                else if (errno != Libc.EINTR)
                {
                    Thread.Sleep(100);
                }
                continue;
            }

            bool foreign;
            lock (Gate)
            {
                foreign = !TryCollect(info.Pid);
                if (foreign)
                {
                    // A foreign zombie keeps waitid(P_ALL) answering with it until its owner reaps it; meanwhile
                    // look at our own children one by one so their exits are not delayed.
                    foreach (var pid in Registered.Keys.ToArray())
                    {
                        TryCollect(pid, noHang: true);
                    }
                }
            }
            if (foreign)
            {
                Thread.Sleep(10);
            }
        }
    }

    /// <summary>Reaps <paramref name="pid"/> if it is ours (or we adopt orphans) and completes its exit. Caller holds Gate.</summary>
    private static bool TryCollect(int pid, bool noHang = false)
    {
        var registered = Registered.TryGetValue(pid, out var child);
        if (!registered && !_reapOrphans)
        {
            return false;
        }
        Libc.SigInfo info = default;
        int rc;
        do
        {
            rc = Libc.WaitId(Libc.P_PID, pid, &info, Libc.WEXITED | (noHang ? Libc.WNOHANG : 0));
        }
        while (rc != 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);
        if (rc != 0 || info.Pid == 0)
        {
            return registered;
        }
        var code = info.Code == Libc.CLD_EXITED ? info.Status : 128 + info.Status;
        var status = new ExitStatus(code, DateTimeOffset.UtcNow);
        if (registered)
        {
            Registered.Remove(pid);
            child!.SetExited(status);
        }
        else
        {
            if (_pendingAdoptions > 0)
            {
                UnclaimedExits[pid] = status;
            }
            ShimLog.Debug($"reaped adopted process {pid} (exit status {code})");
        }
        return true;
    }

    private static int SpawnNative(ProcessStartSpec spec)
    {
        const int OpaqueSize = 1024; // posix_spawnattr_t is 336 bytes in glibc; leave room for other C libraries.
        var fileActions = NativeMemory.AllocZeroed(OpaqueSize);
        var attr = NativeMemory.AllocZeroed(OpaqueSize);
        var sigDefault = NativeMemory.AllocZeroed(256);
        var sigMask = NativeMemory.AllocZeroed(256);
        var files = spec.Files ?? new Dictionary<int, SafeHandle>();
        var addRefs = new List<SafeHandle>();
        var dups = new List<int>();
        byte* argv = null;
        byte* envp = null;
        try
        {
            Check(Libc.FileActionsInit(fileActions), "posix_spawn_file_actions_init", spec);
            Check(Libc.AttrInit(attr), "posix_spawnattr_init", spec);

            var firstFree = Math.Max(3, files.Count == 0 ? 0 : files.Keys.Max() + 1);
            foreach (var (target, handle) in files.OrderBy(f => f.Key))
            {
                var added = false;
                handle.DangerousAddRef(ref added);
                addRefs.Add(handle);
                // Duplicate above every target fd first so that one mapping cannot overwrite another's source.
                var dup = Libc.Fcntl((int)handle.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, firstFree);
                if (dup < 0)
                {
                    throw Failure("dup", spec, Marshal.GetLastPInvokeError());
                }
                dups.Add(dup);
                Check(Libc.FileActionsAddDup2(fileActions, dup, target), "posix_spawn_file_actions_adddup2", spec);
            }
            for (var fd = 0; fd < 3; fd++)
            {
                if (!files.ContainsKey(fd))
                {
                    Check(Libc.FileActionsAddOpen(fileActions, fd, "/dev/null", Libc.O_RDWR, 0), "posix_spawn_file_actions_addopen", spec);
                }
            }
            for (var fd = 3; fd < firstFree; fd++)
            {
                // A gap between the mapped descriptors must not pass on whatever this process has there (glibc
                // ignores the close of a descriptor that is not open).
                if (!files.ContainsKey(fd))
                {
                    Check(Libc.FileActionsAddClose(fileActions, fd), "posix_spawn_file_actions_addclose", spec);
                }
            }
            try
            {
                // Descriptors opened without O_CLOEXEC (inherited ones, the shim's own listener) must not leak.
                Check(Libc.FileActionsAddCloseFrom(fileActions, firstFree), "posix_spawn_file_actions_addclosefrom_np", spec);
            }
            catch (EntryPointNotFoundException)
            {
                // glibc before 2.34: rely on close-on-exec, which .NET sets on every descriptor it opens.
            }
            if (spec.WorkingDirectory is not null)
            {
                Check(Libc.FileActionsAddChdir(fileActions, spec.WorkingDirectory), "posix_spawn_file_actions_addchdir_np", spec);
            }

            // The runtime ignores some signals (SIGPIPE) and blocks others on its threads; the child starts clean.
            Libc.SigFillSet(sigDefault);
            Libc.SigEmptySet(sigMask);
            Check(Libc.AttrSetSigDefault(attr, sigDefault), "posix_spawnattr_setsigdefault", spec);
            Check(Libc.AttrSetSigMask(attr, sigMask), "posix_spawnattr_setsigmask", spec);
            var flags = Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK | (spec.NewSession ? Libc.POSIX_SPAWN_SETSID : 0);
            Check(Libc.AttrSetFlags(attr, (short)flags), "posix_spawnattr_setflags", spec);

            argv = StringVector(spec.Args);
            envp = StringVector(spec.Env ?? CurrentEnvironment());
            var path = Encoding.UTF8.GetBytes(spec.Path + "\0");
            int pid;
            int rc;
            fixed (byte* p = path)
            {
                rc = Libc.PosixSpawn(&pid, p, fileActions, attr, (byte**)argv, (byte**)envp);
            }
            if (rc != 0)
            {
                throw Failure("posix_spawn", spec, rc);
            }
            return pid;
        }
        finally
        {
            foreach (var dup in dups)
            {
                Libc.Close(dup);
            }
            foreach (var handle in addRefs)
            {
                handle.DangerousRelease();
            }
            Libc.FileActionsDestroy(fileActions);
            Libc.AttrDestroy(attr);
            NativeMemory.Free(fileActions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigDefault);
            NativeMemory.Free(sigMask);
            NativeMemory.Free(argv);
            NativeMemory.Free(envp);
        }
    }

    private static List<string> CurrentEnvironment()
    {
        var env = new List<string>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env.Add($"{e.Key}={e.Value}");
        }
        return env;
    }

    /// <summary>Lays out a NULL-terminated char* array and its UTF-8 strings in one native block.</summary>
    private static byte* StringVector(IReadOnlyList<string> strings)
    {
        var pointers = (nuint)((strings.Count + 1) * sizeof(nint));
        nuint total = pointers;
        foreach (var s in strings)
        {
            total += (nuint)Encoding.UTF8.GetByteCount(s) + 1;
        }
        var block = (byte*)NativeMemory.AllocZeroed(total);
        var table = (byte**)block;
        var cursor = block + pointers;
        for (var i = 0; i < strings.Count; i++)
        {
            table[i] = cursor;
            var written = Encoding.UTF8.GetBytes(strings[i], new Span<byte>(cursor, (int)(total - (nuint)(cursor - block))));
            cursor[written] = 0;
            cursor += written + 1;
        }
        table[strings.Count] = null;
        return block;
    }

    private static void Check(int rc, string call, ProcessStartSpec spec)
    {
        if (rc != 0)
        {
            throw Failure(call, spec, rc);
        }
    }

    private static ShimException Failure(string call, ProcessStartSpec spec, int errno) =>
        new(errno == Libc.ENOENT ? StatusCode.NotFound : StatusCode.Internal,
            $"spawn {spec.Path}: {call}: {Libc.StrError(errno)}");
}
