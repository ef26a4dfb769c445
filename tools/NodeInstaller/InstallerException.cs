namespace NodeInstaller;

/// <summary>A problem the installer reports to its user: the message names the file or option and the reason.</summary>
public sealed class InstallerException(string message, Exception? inner = null) : Exception(message, inner);
