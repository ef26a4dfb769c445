using System.CommandLine;
using NodeInstaller;

var config = new Option<string>("--config", "-c")
{
    Description = "containerd's config.toml (created when missing)",
    DefaultValueFactory = _ => "/etc/containerd/config.toml",
};
var binDir = new Option<string?>("--bin-dir")
{
    Description = "folder on the containerd service's PATH to copy the shim into",
    DefaultValueFactory = _ => "/usr/local/bin",
};
var skipCopy = new Option<bool>("--config-only") { Description = "only merge the config; copy no files" };
var sourceDir = new Option<string>("--source-dir")
{
    Description = "folder holding containerd-shim-wasmtime-v1 and libwasmtime.so (default: this tool's own folder)",
    DefaultValueFactory = _ => AppContext.BaseDirectory,
};
var runtimeName = new Option<string>("--runtime-name")
{
    Description = "CRI runtime handler name (a RuntimeClass's handler)",
    DefaultValueFactory = _ => "wasmtime",
};
var runtimeType = new Option<string>("--runtime-type")
{
    Description = "containerd runtime type of the shim",
    DefaultValueFactory = _ => "io.containerd.wasmtime.v1",
};
var containerdVersion = new Option<string?>("--containerd-version")
{
    Description = "containerd version (1.6, 1.7, 2.x); needed only for an empty config, otherwise its 'version' key decides",
};
var dryRun = new Option<bool>("--dry-run") { Description = "change nothing; print what would be copied and the config diff" };

var root = new RootCommand(
    "Installs the wasmtime shim on a node: copies it into a folder on containerd's PATH and adds the CRI runtime handler " +
    "to containerd's config.toml (version 2 or 3), keeping everything else in the file. Running it again changes nothing.")
{
    config, binDir, skipCopy, sourceDir, runtimeName, runtimeType, containerdVersion, dryRun,
};
root.SetAction(result =>
{
    if (!OperatingSystem.IsLinux())
    {
        Console.Error.WriteLine("containerd-wasm-install: runs on Linux nodes only");
        return 2;
    }
    try
    {
        var changed = Installer.Run(new InstallOptions
        {
            ConfigPath = result.GetValue(config)!,
            BinDir = result.GetValue(skipCopy) ? null : result.GetValue(binDir),
            SourceDir = result.GetValue(sourceDir)!,
            RuntimeName = result.GetValue(runtimeName)!,
            RuntimeType = result.GetValue(runtimeType)!,
            ContainerdVersion = result.GetValue(containerdVersion),
            DryRun = result.GetValue(dryRun),
        }, Console.Out);
        if (changed && !result.GetValue(dryRun))
        {
            Console.Out.WriteLine("containerd reads its config at start: restart it (e.g. systemctl restart containerd) to use the runtime handler");
        }
        return 0;
    }
    catch (InstallerException e)
    {
        Console.Error.WriteLine($"containerd-wasm-install: {e.Message}");
        return 1;
    }
});
return root.Parse(args).Invoke();
