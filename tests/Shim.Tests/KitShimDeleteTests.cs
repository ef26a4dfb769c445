using System.Diagnostics;
using System.Globalization;
using Containerd.Shimkit;
using Containerd.Shimkit.Processes;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// <c>delete</c>'s kill of a container without a cgroup: the recorded pid is killed only while its start time is the
/// one recorded at Create, through a pidfd, so a reused pid is never hit.
/// </summary>
public sealed class KitShimDeleteTests : IDisposable
{
    private readonly string _bundle = Directory.CreateTempSubdirectory("shim-delete-").FullName;
    private readonly Process _sleep = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;

    public void Dispose()
    {
        if (!_sleep.HasExited)
        {
            _sleep.Kill();
        }
        _sleep.Dispose();
        Directory.Delete(_bundle, recursive: true);
    }

    [Fact]
    public void Start_time_is_field_22_of_proc_stat()
    {
        var stat = File.ReadAllText($"/proc/{_sleep.Id}/stat");
        var expected = ulong.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19], CultureInfo.InvariantCulture);

        Assert.Equal(expected, ProcessHandle.StartTime(_sleep.Id));
        Assert.Null(ProcessHandle.StartTime(int.MaxValue));
    }

    [Fact]
    public void A_pid_whose_start_time_differs_from_the_record_is_left_alone()
    {
        File.WriteAllText(Path.Combine(_bundle, "init.pid.start"), (ProcessHandle.StartTime(_sleep.Id)!.Value + 1).ToString(CultureInfo.InvariantCulture));

        Assert.False(ShimDelete.KillRecorded("c1", _bundle, _sleep.Id));
        Assert.False(_sleep.WaitForExit(200));
    }

    [Fact]
    public void A_pid_without_a_recorded_start_time_is_left_alone()
    {
        Assert.False(ShimDelete.KillRecorded("c1", _bundle, _sleep.Id));
        Assert.False(_sleep.WaitForExit(200));
    }

    [Fact]
    public void The_recorded_process_is_killed_and_waited_for()
    {
        File.WriteAllText(Path.Combine(_bundle, "init.pid.start"), ProcessHandle.StartTime(_sleep.Id)!.Value.ToString(CultureInfo.InvariantCulture));

        Assert.True(ShimDelete.KillRecorded("c1", _bundle, _sleep.Id));
        Assert.True(_sleep.WaitForExit(5000));
    }
}
