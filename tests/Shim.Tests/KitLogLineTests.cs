using Containerd.Shimkit;
using Xunit;

namespace Shim.Tests;

public class KitLogLineTests
{
    [Fact]
    public void Formats_like_logrus_in_containerd_shims()
    {
        var time = new DateTimeOffset(2026, 1, 2, 15, 4, 5, TimeSpan.Zero).AddTicks(1234567);
        var line = LogLine.Format(time, "info", "starting \"shim\"\n", null);
        Assert.Equal("time=\"2026-01-02T15:04:05.123456700Z\" level=info msg=\"starting \\\"shim\\\"\\n\"\n", line);
    }

    [Fact]
    public void Converts_to_utc_and_appends_the_error_field()
    {
        var time = new DateTimeOffset(2026, 1, 2, 17, 4, 5, TimeSpan.FromHours(2));
        var line = LogLine.Format(time, "error", "failed", "boom\tx\u0001");
        Assert.Equal("time=\"2026-01-02T15:04:05.000000000Z\" level=error msg=\"failed\" error=\"boom\\tx\\x01\"\n", line);
    }
}
