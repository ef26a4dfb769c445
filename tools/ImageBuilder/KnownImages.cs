namespace ImageBuilder;

/// <summary>The images the project builds for its demos and tests, by the names runwasi's docs use where there is one.</summary>
public static class KnownImages
{
    /// <summary>The demo image name, as runwasi names it.</summary>
    public const string DemoName = "ghcr.io/containerd/runwasi/wasi-demo-app:latest";

    /// <summary>The wasm-layer form of the demo, as runwasi's oci-tar-builder names it.</summary>
    public const string DemoWasmLayerName = "ghcr.io/containerd/runwasi/wasi-demo-oci:latest";

    /// <summary>The CNCF wasm artifact form of the demo.</summary>
    public const string DemoArtifactName = "ghcr.io/containerd/runwasi/wasi-demo-oci-artifact:latest";

    /// <summary>The hello-world WASI 0.2 command component (tools/components/hello) as a plain image.</summary>
    public const string ComponentName = "localhost/runwasi-dotnet/hello-component:latest";

    /// <summary>The hello component as a wasm-layer image.</summary>
    public const string ComponentWasmLayerName = "localhost/runwasi-dotnet/hello-component-oci:latest";

    /// <summary>The busybox image built from Debian's busybox-static.</summary>
    public const string BusyboxName = "docker.io/library/busybox:latest";

    /// <summary>The pause (sandbox) image built from tools/pause/pause.c, under the sandbox image name the test harness configures.</summary>
    public const string PauseName = "registry.k8s.io/pause:3.9";

    /// <summary>The busybox applets linked into /bin: enough for the shell scripts tests run.</summary>
    public static IReadOnlyList<string> BusyboxApplets { get; } =
    [
        "[", "cat", "chmod", "cp", "date", "echo", "env", "false", "grep", "head", "hostname", "id", "kill", "ln",
        "ls", "mkdir", "mount", "mv", "nc", "ps", "pwd", "rm", "sed", "sh", "sleep", "stat", "tail", "test", "top",
        "touch", "true", "uname", "wc",
    ];

    /// <summary>
    /// The demo image: a regular (linux/amd64) image with the wasm module at /wasi-demo-app.wasm as its entrypoint.
    /// linux/amd64 rather than wasi/wasm so that plain <c>ctr run</c>, which unpacks for the host platform, works on every containerd.
    /// </summary>
    public static ImageDefinition Demo(string wasmPath, string name = DemoName) => new()
    {
        Name = name,
        Platform = Platform.LinuxAmd64,
        Config = new ImageConfig { Entrypoint = ["/wasi-demo-app.wasm"] },
        Layers = [new FilesystemLayer([LayerEntry.File("wasi-demo-app.wasm", wasmPath, Modes.Executable)])],
    };

    /// <summary>
    /// The wasm-layer image: the module as a <see cref="MediaTypes.WasmComponentLayer"/> layer, config os wasip1 and
    /// architecture wasm, no rootfs diff ids. The label makes the configuration unique per module, since no diff id does.
    /// </summary>
    public static ImageDefinition WasmLayer(string wasmPath, string name = DemoWasmLayerName)
    {
        var title = ModuleTitle(name);
        var layer = new BlobLayer(MediaTypes.WasmComponentLayer, wasmPath, title);
        var module = HostFiles.Read(wasmPath, "wasm module");
        return new ImageDefinition
        {
            Name = name,
            Platform = Platform.Wasip1,
            Config = new ImageConfig
            {
                Entrypoint = [title],
                Labels = new Dictionary<string, string> { ["containerd.runwasi.layers"] = Digest.Hex(Digest.Sha256(module)) },
            },
            Layers = [layer],
        };
    }

    /// <summary>
    /// A component in a plain linux/amd64 image, at /hello.wasm, as its entrypoint; the shim tells it from a core module
    /// by its header.
    /// </summary>
    public static ImageDefinition Component(string wasmPath, string name = ComponentName) => new()
    {
        Name = name,
        Platform = Platform.LinuxAmd64,
        Config = new ImageConfig { Entrypoint = ["/hello.wasm"] },
        Layers = [new FilesystemLayer([LayerEntry.File("hello.wasm", wasmPath, Modes.Executable)])],
    };

    /// <summary>A component as a wasm-layer image: like <see cref="WasmLayer"/>, with platform wasip2/wasm.</summary>
    public static ImageDefinition ComponentWasmLayer(string wasmPath, string name = ComponentWasmLayerName)
    {
        var image = WasmLayer(wasmPath, name);
        return new ImageDefinition { Name = image.Name, Platform = Platform.Wasip2, Config = image.Config, Layers = image.Layers };
    }

    /// <summary>The CNCF wasm artifact form: config <see cref="MediaTypes.WasmArtifactConfig"/>, one <see cref="MediaTypes.WasmArtifactLayer"/> layer.</summary>
    public static ImageDefinition WasmArtifact(string wasmPath, string name = DemoArtifactName) => new()
    {
        Name = name,
        Platform = Platform.Wasip1,
        Kind = ImageKind.WasmArtifact,
        Layers = [new BlobLayer(MediaTypes.WasmArtifactLayer, wasmPath, ModuleTitle(name))],
    };

    /// <summary>The module name of a wasm image's layer, after the image as runwasi names it: the last path element of
    /// the repository plus <c>.wasm</c> (<c>ghcr.io/containerd/runwasi/wasi-demo-oci:latest</c> → <c>wasi-demo-oci.wasm</c>).</summary>
    public static string ModuleTitle(string imageName)
    {
        var last = imageName[(imageName.LastIndexOf('/') + 1)..];
        var at = last.IndexOfAny([':', '@']);
        return (at < 0 ? last : last[..at]) + ".wasm";
    }

    /// <summary>A busybox image: the static busybox binary at /bin/busybox, applet symlinks, and the usual top-level directories.</summary>
    /// <param name="busyboxPath">A statically linked busybox, e.g. Debian busybox-static's /bin/busybox.</param>
    /// <param name="name">The image name.</param>
    public static ImageDefinition Busybox(string busyboxPath = "/bin/busybox", string name = BusyboxName)
    {
        var entries = new List<LayerEntry>
        {
            LayerEntry.File("bin/busybox", busyboxPath, Modes.Executable),
            LayerEntry.Directory("dev"),
            LayerEntry.Directory("proc"),
            LayerEntry.Directory("sys"),
            LayerEntry.Directory("root", (UnixFileMode)0b111_000_000),
            LayerEntry.Directory("tmp", (UnixFileMode)0b1_111_111_111),
            LayerEntry.Directory("var"),
            LayerEntry.Bytes("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"u8.ToArray()),
            LayerEntry.Bytes("etc/group", "root:x:0:\nnogroup:x:65534:\n"u8.ToArray()),
        };
        entries.AddRange(BusyboxApplets.Select(applet => LayerEntry.Symlink("bin/" + applet, "busybox")));
        return new ImageDefinition
        {
            Name = name,
            Platform = Platform.LinuxAmd64,
            Config = new ImageConfig
            {
                Cmd = ["sh"],
                Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            },
            Layers = [new FilesystemLayer(entries)],
        };
    }

    /// <summary>A pause image: the static pause binary (tools/pause/pause.c) at /pause as entrypoint.</summary>
    public static ImageDefinition Pause(string pauseBinaryPath, string name = PauseName) => new()
    {
        Name = name,
        Platform = Platform.LinuxAmd64,
        Config = new ImageConfig { Entrypoint = ["/pause"] },
        Layers = [new FilesystemLayer([LayerEntry.File("pause", pauseBinaryPath, Modes.Executable)])],
    };
}
