using Containerd.Shim.Wasm;
using Containerd.Shimkit;
using Grpc.Core;
using Xunit;

namespace Shim.Tests;

/// <summary>Reads of what a tenant influences stop at their bound; the instance's report on the control pipe is one.</summary>
public sealed class KitBoundedReadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bounded-read-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_file_of_exactly_the_bound_is_read_and_one_byte_more_is_refused_naming_the_bound()
    {
        var path = Path.Combine(_dir, "f");
        File.WriteAllBytes(path, new byte[100_000]);

        Assert.Equal(100_000, BoundedRead.File(path, 100_000).Length);
        var e = Assert.Throws<ReadLimitExceededException>(() => BoundedRead.File(path, 99_999));
        Assert.Contains("99999 bytes", e.Message);
        Assert.Contains(path, e.Message);
        Assert.IsAssignableFrom<IOException>(e);
    }

    [Fact]
    public void An_endless_file_is_refused_at_the_bound()
    {
        // /dev/zero never ends: only the bound stops the read.
        Assert.Throws<ReadLimitExceededException>(() => BoundedRead.File("/dev/zero", 1 << 20));
    }

    [Fact]
    public void Tail_reads_what_follows_the_offset_or_only_the_last_bytes()
    {
        var path = Path.Combine(_dir, "log");
        File.WriteAllText(path, "old entry\n" + new string('x', 1000) + "\nnewest\n");

        Assert.Equal("newest\n", BoundedRead.Tail(path, 0, 7));
        Assert.Equal(new string('x', 1000) + "\nnewest\n", BoundedRead.Tail(path, 10, 4096));
        Assert.Equal("", BoundedRead.Tail(path, new FileInfo(path).Length, 4096));
    }

    [Fact]
    public async Task A_report_larger_than_64_KiB_is_an_error_and_the_writer_is_not_left_blocked()
    {
        using var pipe = Pipe.Create();
        var writer = Task.Run(() =>
        {
            using var stream = new FileStream(pipe.Write, FileAccess.Write, bufferSize: 0);
            try
            {
                // Far more than a pipe buffers: only a reader that closes its end lets this end.
                stream.Write(new byte[4 << 20]);
                return "wrote everything";
            }
            catch (IOException)
            {
                return "broken pipe";
            }
        });

        var report = ControlChannel.ReadReport(pipe.Read);

        Assert.NotNull(report);
        Assert.Equal(StatusCode.Internal, report.Code);
        Assert.Contains($"more than {ControlChannel.MaxReportBytes} bytes", report.Message);
        Assert.Equal("broken pipe", await writer.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_reported_error_is_escaped()
    {
        using var pipe = Pipe.Create();
        using (var stream = new FileStream(pipe.Write, FileAccess.Write, bufferSize: 0))
        {
            stream.Write("error 3 entrypoint /x: \u001b[2Jcleared"u8);
        }

        var report = ControlChannel.ReadReport(pipe.Read);

        Assert.NotNull(report);
        Assert.Equal(StatusCode.InvalidArgument, report.Code);
        Assert.Equal("entrypoint /x: \\e[2Jcleared", report.Message);
    }
}
