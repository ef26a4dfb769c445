using System.CommandLine;

namespace ImageBuilder.Cli;

/// <summary>The oci-image-builder command line: <c>build</c> for any image, and one subcommand per known image.</summary>
internal static class BuilderCommands
{
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("Writes OCI image-layout tarballs that `ctr image import` accepts.");
        root.Subcommands.Add(BuildCommand.Create());
        root.Subcommands.Add(Known("demo", "The demo image: a linux/amd64 image with the wasm module at /wasi-demo-app.wasm.",
            "--wasm", "the wasi-demo-app wasm module", null, KnownImages.DemoName, KnownImages.Demo));
        root.Subcommands.Add(Known("demo-oci", "The demo as a wasm-layer image (wasip1/wasm, wasm component layer).",
            "--wasm", "the wasm module", null, KnownImages.DemoWasmLayerName, KnownImages.WasmLayer));
        root.Subcommands.Add(Known("demo-artifact", "The demo as a CNCF wasm OCI artifact.",
            "--wasm", "the wasm module", null, KnownImages.DemoArtifactName, KnownImages.WasmArtifact));
        root.Subcommands.Add(Known("component", "A WASI 0.2 component in a linux/amd64 image, at /hello.wasm.",
            "--wasm", "the component", null, KnownImages.ComponentName, KnownImages.Component));
        root.Subcommands.Add(Known("component-oci", "A WASI 0.2 component as a wasm-layer image (wasip2/wasm, wasm component layer).",
            "--wasm", "the component", null, KnownImages.ComponentWasmLayerName, KnownImages.ComponentWasmLayer));
        root.Subcommands.Add(Known("busybox", "A busybox image from a static busybox binary.",
            "--busybox", "a statically linked busybox", "/bin/busybox", KnownImages.BusyboxName, KnownImages.Busybox));
        root.Subcommands.Add(Known("pause", "A pause image from a static pause binary (tools/pause/pause.c).",
            "--binary", "the static pause binary", null, KnownImages.PauseName, KnownImages.Pause));
        return root;
    }

    /// <summary>Runs a build, turning the builder's errors into a message on stderr and exit code 1.</summary>
    public static int Run(Func<ImageDefinition> define, string output)
    {
        try
        {
            var built = ImageLayoutWriter.Write(define(), output);
            Console.WriteLine($"{built.Name} {built.ManifestDigest} -> {built.Path}");
            return 0;
        }
        catch (ImageBuilderException e)
        {
            Console.Error.WriteLine($"oci-image-builder: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine($"oci-image-builder: {e.Message}");
            return 2;
        }
    }

    public static Option<string> OutputOption() => new("--output", "-o")
    {
        Description = "the tarball to write",
        Required = true,
    };

    private static Command Known(string name, string description, string inputOption, string inputDescription,
        string? inputDefault, string defaultName, Func<string, string, ImageDefinition> define)
    {
        var input = new Option<string>(inputOption) { Description = inputDescription, Required = inputDefault is null };
        if (inputDefault is not null)
        {
            input.DefaultValueFactory = _ => inputDefault;
        }
        var imageName = new Option<string>("--name") { Description = "the image name", DefaultValueFactory = _ => defaultName };
        var output = OutputOption();
        var command = new Command(name, description) { input, imageName, output };
        command.SetAction(result => Run(
            () => define(result.GetValue(input)!, result.GetValue(imageName)!),
            result.GetValue(output)!));
        return command;
    }
}
