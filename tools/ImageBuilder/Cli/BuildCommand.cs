using System.CommandLine;

namespace ImageBuilder.Cli;

/// <summary>
/// <c>build</c>: an image from files, directories, symlinks and raw blob layers, e.g.
/// <c>build --name x:1 --file /bin/app=./app --entrypoint /bin/app -o x.tar</c> or, for a wasm-layer image,
/// <c>build --name x:1 --platform wasip1/wasm --layer application/vnd.bytecodealliance.wasm.component.layer.v0+wasm=app.wasm -o x.tar</c>.
/// </summary>
internal static class BuildCommand
{
    public static Command Create()
    {
        var name = new Option<string>("--name", "-n") { Description = "the full image name, e.g. example.com/app:latest", Required = true };
        var platform = new Option<string>("--platform") { Description = "os/arch", DefaultValueFactory = _ => Platform.LinuxAmd64.ToString() };
        var files = Many("--file", "IMAGE_PATH=HOST_PATH[:OCTAL_MODE]: a file in the filesystem layer");
        var dirs = Many("--dir", "IMAGE_PATH[:OCTAL_MODE]: a directory in the filesystem layer");
        var links = Many("--symlink", "IMAGE_PATH=TARGET: a symlink in the filesystem layer");
        var layers = Many("--layer", "MEDIA_TYPE=HOST_PATH[=TITLE]: a file carried as a layer unchanged (e.g. a wasm module), titled TITLE");
        var entrypoint = Many("--entrypoint", "an entrypoint element (repeat for each)");
        var cmd = Many("--cmd", "a cmd element (repeat for each)");
        var env = Many("--env", "NAME=value");
        var labels = Many("--label", "key=value");
        var workdir = new Option<string?>("--workdir") { Description = "the working directory" };
        var gzip = new Option<bool>("--gzip") { Description = "gzip the filesystem layer" };
        var artifact = new Option<bool>("--as-artifact") { Description = "write a CNCF wasm artifact (config application/vnd.wasm.config.v0+json) instead of an image" };
        var output = BuilderCommands.OutputOption();

        var command = new Command("build", "An image from files, directories, symlinks and blob layers.")
        {
            name, platform, files, dirs, links, layers, entrypoint, cmd, env, labels, workdir, gzip, artifact, output,
        };
        command.SetAction(result => BuilderCommands.Run(() =>
        {
            var entries = new List<LayerEntry>();
            foreach (var file in result.GetValue(files)!)
            {
                var (imagePath, rest) = Split(file, '=', "--file");
                var modeAt = rest.LastIndexOf(':');
                entries.Add(modeAt > 0
                    ? LayerEntry.File(imagePath, rest[..modeAt], Modes.ParseOctal(rest[(modeAt + 1)..]))
                    : LayerEntry.File(imagePath, rest));
            }
            foreach (var dir in result.GetValue(dirs)!)
            {
                var modeAt = dir.LastIndexOf(':');
                entries.Add(modeAt > 0 ? LayerEntry.Directory(dir[..modeAt], Modes.ParseOctal(dir[(modeAt + 1)..])) : LayerEntry.Directory(dir));
            }
            foreach (var link in result.GetValue(links)!)
            {
                var (imagePath, target) = Split(link, '=', "--symlink");
                entries.Add(LayerEntry.Symlink(imagePath, target));
            }
            var allLayers = new List<Layer>();
            if (entries.Count > 0)
            {
                allLayers.Add(new FilesystemLayer(entries, result.GetValue(gzip)));
            }
            foreach (var layer in result.GetValue(layers)!)
            {
                var (mediaType, path) = Split(layer, '=', "--layer");
                // An optional second '=' gives the layer's title, the module name args[0] selects it by.
                var titleAt = path.LastIndexOf('=');
                allLayers.Add(titleAt > 0
                    ? new BlobLayer(mediaType, path[..titleAt], path[(titleAt + 1)..])
                    : new BlobLayer(mediaType, path));
            }
            return new ImageDefinition
            {
                Name = result.GetValue(name)!,
                Platform = Platform.Parse(result.GetValue(platform)!),
                Kind = result.GetValue(artifact) ? ImageKind.WasmArtifact : ImageKind.Image,
                Layers = allLayers,
                Config = new ImageConfig
                {
                    Entrypoint = result.GetValue(entrypoint)!,
                    Cmd = result.GetValue(cmd)!,
                    Env = result.GetValue(env)!,
                    Labels = result.GetValue(labels)!.Select(l => Split(l, '=', "--label")).ToDictionary(l => l.Left, l => l.Right),
                    WorkingDir = result.GetValue(workdir),
                },
            };
        }, result.GetValue(output)!));
        return command;
    }

    private static Option<string[]> Many(string name, string description) => new(name)
    {
        Description = description,
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };

    private static (string Left, string Right) Split(string value, char separator, string option)
    {
        var at = value.IndexOf(separator);
        if (at <= 0)
        {
            throw new FormatException($"{option} '{value}' is not of the form LEFT{separator}RIGHT");
        }
        return (value[..at], value[(at + 1)..]);
    }
}
