using System.IO.Pipes;
using System.Text.Json;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Grpc.Core;

namespace NodeWasi;

/// <summary>
/// Creates one <c>node</c> process per container. At Create the process exists (containerd gets its pid) but waits
/// on a pipe; Start hands it the module, argv, environment and preopens. Isolation is WASI's capability model: the
/// guest sees only the container's rootfs, preopened as <c>/</c>. Unlike the wasm layer's instance process, node
/// runs in the shim's namespaces and cgroup: this sample shows the instance-level interface, not a sandbox.
/// </summary>
public sealed class NodeInstanceFactory : IInstanceFactory
{
    private const int MaxSymlinks = 40;

    /// <inheritdoc/>
    public Task<IInstance> CreateAsync(InstanceConfig config, CancellationToken ct)
    {
        var process = config.Spec.Process;
        var args = process?.Args ?? [];
        if (args.Count == 0 || args[0].Length == 0)
        {
            throw new ShimException(StatusCode.InvalidArgument, "process.args is empty: no module to run");
        }
        var env = process?.Env ?? [];
        var cwd = string.IsNullOrEmpty(process?.Cwd) ? "/" : process.Cwd;
        var module = ResolveModule(config.Rootfs, args[0], cwd, env);

        var node = FindNode();
        var runner = Path.Combine(config.Bundle, "nodewasi-runner.js");
        using (var resource = typeof(NodeInstanceFactory).Assembly.GetManifestResourceStream("runner.js")
            ?? throw new ShimException(StatusCode.Internal, "runner.js is missing from the shim's resources"))
        using (var file = File.Create(runner))
        {
            resource.CopyTo(file);
        }

        // The start gate: node blocks reading fd 3 until Start writes the configuration and closes the pipe.
        var gate = new AnonymousPipeServerStream(PipeDirection.Out);
        ChildProcess child;
        try
        {
            var files = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [3] = gate.ClientSafePipeHandle };
            if (config.Stdin is { } stdin) files[0] = stdin;
            if (config.Stdout is { } stdout) files[1] = stdout;
            if (config.Stderr is { } stderr) files[2] = stderr;
            child = Reaper.Spawn(new ProcessStartSpec
            {
                Path = node,
                // --no-warnings: node:wasi prints an "experimental" warning that would land in the container's stderr.
                Args = ["node", "--no-warnings", runner],
                Env = [],
                WorkingDirectory = config.Rootfs,
                Files = files,
            });
        }
        catch
        {
            gate.Dispose();
            throw;
        }
        gate.DisposeLocalCopyOfClientHandle();
        // The child has its own copies of the container's stdio; the instance owns ours from here and needs none.
        config.Stdin?.Dispose();
        config.Stdout?.Dispose();
        config.Stderr?.Dispose();

        var start = RunConfiguration(module, Path.GetFileName(module), args, env, config.Rootfs);
        return Task.FromResult<IInstance>(new NodeInstance(child, gate, start));
    }

    // The JSON runner.js reads at Start. Written by hand with Utf8JsonWriter: NativeAOT has no reflection serializer.
    private static byte[] RunConfiguration(string module, string argv0, IReadOnlyList<string> args,
        IReadOnlyList<string> env, string rootfs)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("module", module);
            json.WriteStartArray("args");
            json.WriteStringValue(argv0);
            foreach (var arg in args.Skip(1))
            {
                json.WriteStringValue(arg);
            }
            json.WriteEndArray();
            json.WriteStartObject("env");
            foreach (var entry in env)
            {
                var eq = entry.IndexOf('=');
                json.WriteString(eq < 0 ? entry : entry[..eq], eq < 0 ? "" : entry[(eq + 1)..]);
            }
            json.WriteEndObject();
            json.WriteStartObject("preopens");
            json.WriteString("/", rootfs);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static string FindNode()
    {
        if (Environment.GetEnvironmentVariable("NODEWASI_NODE") is { Length: > 0 } configured)
        {
            return configured;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, "node");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new ShimException(StatusCode.FailedPrecondition, "node is not on the shim's PATH (set NODEWASI_NODE)");
    }

    /// <summary>
    /// The host path of args[0] inside the rootfs: a path (relative to the cwd) or a bare name searched on the
    /// container's <c>PATH</c>. Symlinks are followed inside the rootfs, never out of it. The file must be a wasm
    /// binary (node cannot run the text format).
    /// </summary>
    private static string ResolveModule(string rootfs, string arg0, string cwd, IReadOnlyList<string> env)
    {
        if (arg0.Contains('#'))
        {
            throw new ShimException(StatusCode.InvalidArgument, $"{arg0}: this engine runs _start only (no #function)");
        }
        IEnumerable<string> candidates = arg0.Contains('/')
            ? [arg0.StartsWith('/') ? arg0 : Path.Combine(cwd, arg0)]
            : (env.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "/usr/bin:/bin")
                .Split(':', StringSplitOptions.RemoveEmptyEntries).Select(dir => Path.Combine(dir, arg0));
        foreach (var candidate in candidates)
        {
            if (InRootfs(rootfs, candidate) is { } host && File.Exists(host))
            {
                Span<byte> magic = stackalloc byte[4];
                using (var file = File.OpenRead(host))
                {
                    if (file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || !magic.SequenceEqual("\0asm"u8))
                    {
                        throw new ShimException(StatusCode.InvalidArgument, $"{arg0}: not a wasm module");
                    }
                }
                return host;
            }
        }
        throw new ShimException(StatusCode.NotFound, $"{arg0}: no such file in the container's rootfs");
    }

    // Resolves a container path to a host path below rootfs, following symlinks as the container would see them.
    private static string? InRootfs(string rootfs, string path)
    {
        var pending = new Stack<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        var resolved = new List<string>();
        var links = 0;
        while (pending.TryPop(out var part))
        {
            if (part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (resolved.Count > 0) resolved.RemoveAt(resolved.Count - 1);
                continue;
            }
            var host = Path.Combine([rootfs, .. resolved, part]);
            var info = new FileInfo(host);
            if (info.LinkTarget is { } target)
            {
                if (++links > MaxSymlinks)
                {
                    return null;
                }
                if (target.StartsWith('/'))
                {
                    resolved.Clear();
                }
                foreach (var t in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
                {
                    pending.Push(t);
                }
                continue;
            }
            resolved.Add(part);
        }
        return Path.Combine([rootfs, .. resolved]);
    }
}
