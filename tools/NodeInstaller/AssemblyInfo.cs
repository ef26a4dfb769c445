using System.Runtime.Versioning;

// The installer runs on Linux nodes next to containerd, and sets Unix file modes.
[assembly: SupportedOSPlatform("linux")]
