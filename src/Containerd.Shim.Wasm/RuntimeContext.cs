using System.Runtime.InteropServices;
using Containerd.Shimkit;
using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace Containerd.Shim.Wasm;

/// <summary>Everything an <see cref="IEngine"/> needs to run one container's program.</summary>
public sealed class RuntimeContext : IDisposable
{
    /// <summary>The container id.</summary>
    public required string Id { get; init; }

    /// <summary>The container's root filesystem: its host path, or <c>/</c> in an instance process that has entered
    /// it. Engines open nothing through it: the files they need are in <see cref="Entrypoint"/> and
    /// <see cref="Preopens"/>.</summary>
    public required string Rootfs { get; init; }

    /// <summary>The container's OCI runtime spec.</summary>
    public required Spec Spec { get; init; }

    /// <summary><c>process.args</c> as given; args[0] is the entrypoint as written (with any <c>#function</c>).</summary>
    public required IReadOnlyList<string> Args { get; init; }

    /// <summary><c>process.env</c> as <c>NAME=value</c> entries.</summary>
    public required IReadOnlyList<string> Env { get; init; }

    /// <summary><c>process.cwd</c>, a path inside the container (default <c>/</c>).</summary>
    public required string Cwd { get; init; }

    /// <summary>The resolved program.</summary>
    public required Entrypoint Entrypoint { get; init; }

    /// <summary>The directories the guest sees (default: the rootfs as <c>/</c>, read-write); see <see cref="WasiPreopens"/>.</summary>
    public IReadOnlyList<WasiPreopen> Preopens { get => _preopens; init => _preopens = value; }

    // Replaced in place by FromSharedSpec, which owns the context it has just made.
    private IReadOnlyList<WasiPreopen> _preopens = [];

    /// <summary>
    /// The container's memory limit in bytes (<c>linux.resources.memory.limit</c>), or null when it has none. The
    /// kernel enforces it on the whole instance process through the cgroup; an engine should also cap the guest's
    /// linear memory (see <see cref="GuestMemoryBudget"/>) so a guest that grows too far gets a failed
    /// <c>memory.grow</c> instead of an OOM kill.
    /// </summary>
    public long? MemoryLimit { get; init; }

    /// <summary>
    /// How many bytes of linear memory a guest may reach under <see cref="MemoryLimit"/>: the limit less what the
    /// container's cgroup is already charged and cannot reclaim (the runtime's and the engine's heaps, the compiled
    /// module, kernel memory) and a margin for what running takes. Page cache, such as the executable's and
    /// libwasmtime's code pages, is left out: the kernel drops it at the limit rather than OOM-killing. Null when there
    /// is no limit. Call it in the instance process, right before instantiating; it reads the charge through the
    /// descriptors the shim passed (fds 7 and 8), or, without them, counts this process's resident size instead.
    /// </summary>
    public long? GuestMemoryBudget()
    {
        if (MemoryLimit is not { } limit)
        {
            return null;
        }
        // What the runtime allocated while preparing (spec, module bytes, compile) is garbage now: hand its pages
        // back before measuring, so that they are the guest's budget rather than the runtime's idle heap.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        // So is what the engine freed in native code: a cold start's compile leaves ~6 MiB of free blocks in glibc's
        // arenas (measured: 12.9 MiB charged after a compile, 6.7 MiB after a cache hit), which stay charged to the
        // cgroup until trimmed.
        Sys.MallocTrim(0);
        var charge = MemoryChargeFds.Read();
        var held = charge is { } c ? (long)c.Unreclaimable : ResidentBytes();
        var budget = Math.Max(limit - held - RunMargin, 0);
        if (ShimTrace.Enabled)
        {
            ShimTrace.Mark($"instance: guest memory budget {budget} of {limit}: {(charge is { } m ? m.ToString() : $"{held} resident")}");
            ShimTrace.Mark($"instance: memory.stat at the budget: {MemoryCharge.ReadCgroupFile(MemoryChargeFds.StatFd)?.ReplaceLineEndings(", ").Trim(' ', ',')}");
        }
        return budget;
    }

    // What running the program takes beyond the linear memory and what is charged before it starts: the instance's
    // own structures, WASI buffers, the guest's page tables, allocations of the runtime while it runs, and the code
    // pages the kernel would otherwise have to keep dropping and reading again.
    private const long RunMargin = 4L << 20;

    private static long ResidentBytes()
    {
        try
        {
            // statm: size resident shared ... in pages.
            var fields = File.ReadAllText("/proc/self/statm").Split(' ');
            return long.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }

    /// <summary>The platform the container runs on, as OCI spells it (e.g. <c>linux/amd64</c>).</summary>
    public string Platform { get; init; } = CurrentPlatform;

    /// <summary>The program's argv: the entrypoint's name followed by <c>args[1..]</c>.</summary>
    public IReadOnlyList<string> Argv => [Entrypoint.Name, .. Args.Skip(1)];

    /// <summary>The environment split into names and values; entries without <c>=</c> get an empty value.</summary>
    public IEnumerable<(string Name, string Value)> EnvironmentVariables =>
        Env.Select(e => e.IndexOf('=') is var i and >= 0 ? (e[..i], e[(i + 1)..]) : (e, ""));

    /// <summary>
    /// The environment a WASI preview 1 guest gets: <see cref="EnvironmentVariables"/>, plus <c>PWD</c> naming
    /// <see cref="Cwd"/> when the cwd is not <c>/</c> and the spec sets no <c>PWD</c>. Preview 1 has no working
    /// directory (wasi-libc programs start in "/"); PWD is how a program that cares, or a libc that honours it, learns
    /// the cwd the spec asked for. Every engine passes this list, so all of them agree.
    /// </summary>
    public IReadOnlyList<(string Name, string Value)> WasiEnvironment
    {
        get
        {
            var env = EnvironmentVariables.ToList();
            if (Cwd != "/" && !env.Any(e => e.Name == "PWD"))
            {
                env.Add(("PWD", Cwd));
            }
            return env;
        }
    }

    /// <summary>The platform of this process, as OCI spells it.</summary>
    public static string CurrentPlatform => "linux/" + RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Builds the context of a container from its spec: reads process args, env and cwd, resolves the entrypoint
    /// inside <paramref name="rootfs"/> and reads its module, opens the preopened directories; every lookup is made by
    /// descriptor inside the rootfs. Throws <see cref="Containerd.Shimkit.ShimException"/> for bad input.
    /// </summary>
    /// <param name="id">The container id.</param>
    /// <param name="rootfs">Host path of the root filesystem.</param>
    /// <param name="spec">The container's spec.</param>
    /// <param name="imageModule">Asked only when args[0] is not a file in the rootfs, with the name and function of
    /// args[0]: the module from the container's image (its wasm layers), or null when the image has none. Asking only
    /// then keeps plain rootfs images free of any round trip to containerd.</param>
    public static RuntimeContext FromSpec(string id, string rootfs, Spec spec,
        Func<string, string, Entrypoint?>? imageModule = null)
    {
        using var root = RootfsPath.OpenRoot(rootfs);
        return FromSpec(id, rootfs, root, spec, imageModule);
    }

    /// <summary>
    /// As <see cref="FromSpec(string, string, Spec, Func{string, string, Entrypoint?}?)"/>, with what
    /// <see cref="SharedSpecPolicy"/> made of the spec: the rootfs preopens read-only when <c>root.readonly</c> is set,
    /// and the bind mounts added at their destinations (a bind replaces a rootfs preopen at the same path). The
    /// context takes the binds' descriptors over, also when this throws.
    /// </summary>
    public static RuntimeContext FromSharedSpec(string id, string rootfs, Spec spec,
        Func<string, string, Entrypoint?>? imageModule, SharedSpecBinds shared)
    {
        ArgumentNullException.ThrowIfNull(shared);
        var binds = shared.Take();
        RuntimeContext ctx;
        try
        {
            ctx = FromSpec(id, rootfs, spec, imageModule);
        }
        catch
        {
            WasiPreopens.Close(binds);
            throw;
        }
        var preopens = new List<WasiPreopen>();
        foreach (var p in ctx.Preopens)
        {
            if (binds.Any(b => b.GuestPath == p.GuestPath))
            {
                p.Handle?.Dispose();
                continue;
            }
            // A read-only rootfs is read-only in every folder of it, as normal mode's read-only remount is.
            preopens.Add(shared.ReadOnlyRoot && p.Writable ? p with { Writable = false } : p);
        }
        preopens.AddRange(binds);
        ctx._preopens = preopens;
        return ctx;
    }

    /// <summary>As <see cref="FromSpec(string, string, Spec, Func{string, string, Entrypoint?}?)"/>, from a
    /// descriptor of the rootfs (<paramref name="rootfs"/> only names it).</summary>
    internal static RuntimeContext FromSpec(string id, string rootfs, SafeFileHandle root, Spec spec,
        Func<string, string, Entrypoint?>? imageModule)
    {
        var process = spec.Process;
        var args = process?.Args ?? [];
        var env = process?.Env ?? [];
        var cwd = string.IsNullOrEmpty(process?.Cwd) ? "/" : process.Cwd;
        CheckCwd(root, cwd);
        var preopens = WasiPreopens.FromSpec(spec, root);
        Entrypoint entrypoint;
        try
        {
            try
            {
                entrypoint = EntrypointResolver.Resolve(root, args, env, cwd);
            }
            catch (EntrypointException e) when (e.Error == EntrypointError.NotFound && imageModule is not null)
            {
                var (name, function) = EntrypointResolver.Split(args[0]);
                var fromImage = imageModule(name, function);
                if (fromImage is null)
                {
                    throw;
                }
                entrypoint = fromImage;
            }
        }
        catch
        {
            WasiPreopens.Close(preopens);
            throw;
        }
        return new RuntimeContext
        {
            Id = id,
            Rootfs = rootfs,
            Spec = spec,
            Args = args,
            Env = env,
            Cwd = cwd,
            Entrypoint = entrypoint,
            Preopens = preopens,
            MemoryLimit = spec.Linux?.Resources?.Memory?.Limit is > 0 and var limit ? limit : null,
        };
    }

    // process.cwd is where relative entrypoints are looked up and what PWD says (WASI preview 1 has no working
    // directory). It must be absolute and, where it exists, a directory reached inside the rootfs: a symlink loop, a
    // ".." above the root or a file fails Create as runc's chdir would. A missing one is let through (runc would
    // create it; the guest starts in "/").
    private static void CheckCwd(SafeFileHandle root, string cwd)
    {
        if (!cwd.StartsWith('/'))
        {
            throw new ShimException(StatusCode.InvalidArgument,
                $"process.cwd \"{UntrustedText.Excerpt(cwd)}\" is not an absolute path");
        }
        string? reason = null;
        try
        {
            using var dir = RootfsPath.Open(root, cwd);
            if (RootfsPath.KindOf(dir) != RootfsPath.Kind.Directory)
            {
                reason = "is not a directory in the container";
            }
        }
        catch (EntrypointException e) when (e.Error != EntrypointError.NotFound || !e.Reason.StartsWith("no such file", StringComparison.Ordinal))
        {
            reason = e.Reason;
        }
        catch (EntrypointException)
        {
            // Missing: see above.
        }
        if (reason is not null)
        {
            throw new ShimException(StatusCode.InvalidArgument, $"process.cwd {UntrustedText.Excerpt(cwd)}: {reason}");
        }
    }

    /// <summary>
    /// This context for a process whose root is now the container's rootfs (an instance process after its pivot):
    /// the rootfs is <c>/</c> and the engine opens each preopen by its guest path, which the kernel can only resolve
    /// inside the container. The descriptors the preopens held are closed.
    /// </summary>
    internal RuntimeContext InsideRootfs() => new()
    {
        Id = Id,
        Rootfs = "/",
        Spec = Spec,
        Args = Args,
        Env = Env,
        Cwd = Cwd,
        Entrypoint = Entrypoint,
        Preopens = WasiPreopens.InsideRootfs(Preopens),
        MemoryLimit = MemoryLimit,
        Platform = Platform,
    };

    /// <summary>Closes the descriptors the preopens hold (a host that keeps the context for a container's life
    /// calls it when the container is deleted).</summary>
    public void Dispose() => WasiPreopens.Close(Preopens);
}
