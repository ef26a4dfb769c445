using Containerd.Shimkit.Cgroups;
using Containerd.Shimkit.Oci;
using Xunit;
using Xunit.Abstractions;

namespace Shim.Tests;

/// <summary>
/// <see cref="MemoryCharge"/>: what a cgroup is charged that it cannot reclaim, from v1 and v2 <c>memory.stat</c>
/// text, and from a real cgroup through descriptors opened beforehand, as an instance process reads it.
/// </summary>
public sealed class KitMemoryChargeTests(ITestOutputHelper output)
{
    [Fact]
    public void V1_charge_is_the_usage_less_the_file_lru_pages()
    {
        // A v1 leaf: its own figures and the total_ ones agree; the usage also holds kernel memory memory.stat omits.
        const string stat = """
            cache 9437184
            rss 6291456
            shmem 0
            mapped_file 8388608
            inactive_anon 6291456
            active_anon 0
            inactive_file 5242880
            active_file 4194304
            hierarchical_memory_limit 67108864
            total_cache 9437184
            total_rss 6291456
            total_inactive_file 5242880
            total_active_file 4194304
            """;
        var charge = MemoryCharge.Parse(stat, "17825792\n");
        Assert.Equal(17825792UL, charge.Usage);
        Assert.Equal(6291456UL, charge.Anon);
        Assert.Equal(9437184UL, charge.File);
        Assert.Equal(17825792UL - 9437184UL, charge.Unreclaimable);
        Assert.Equal(17825792UL - 9437184UL - 6291456UL, charge.Other);
        output.WriteLine(charge.ToString());
        Assert.Equal("8.0 MiB unreclaimable of 17.0 MiB charged (anon 6.0, file 9.0, other 2.0)", charge.ToString());
    }

    [Fact]
    public void V1_parent_counts_its_children_through_the_totals()
    {
        var charge = MemoryCharge.Parse("rss 0\ninactive_file 0\nactive_file 0\ntotal_rss 4096\ntotal_inactive_file 8192\ntotal_active_file 0\n", "20480");
        Assert.Equal(4096UL, charge.Anon);
        Assert.Equal(8192UL, charge.File);
    }

    [Fact]
    public void V2_charge_is_the_usage_less_the_file_lru_pages()
    {
        const string stat = """
            anon 7340032
            file 10485760
            kernel 2097152
            shmem 1048576
            active_anon 7340032
            inactive_anon 1048576
            active_file 3145728
            inactive_file 6291456
            """;
        var charge = MemoryCharge.Parse(stat, "19922944\n");
        Assert.Equal(7340032UL, charge.Anon);
        // Shared memory is file but sits on the anon lists, which the kernel cannot drop without swap: it stays charged.
        Assert.Equal(9437184UL, charge.File);
        Assert.Equal(19922944UL - 9437184UL, charge.Unreclaimable);
    }

    [Fact]
    public void Descriptors_that_are_not_cgroup_files_read_as_no_charge()
    {
        using var file = File.OpenHandle(typeof(KitMemoryChargeTests).Assembly.Location);
        var fd = (int)file.DangerousGetHandle();
        Assert.Null(MemoryCharge.Read(fd, fd));
        Assert.Null(MemoryCharge.Read(999, 998));
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task A_real_cgroup_is_measured_through_its_open_files_after_a_process_in_it_allocates()
    {
        var host = CgroupHierarchy.Host;
        var path = $"/shim-tests-charge-{Guid.NewGuid().ToString("N")[..8]}";
        var cgroup = Cgroup.Create(host, path, new LinuxResources { Memory = new LinuxMemory { Limit = 256 << 20 } });
        var files = cgroup.OpenMemoryFiles();
        if (files is not var (stat, usage))
        {
            cgroup.Delete(TimeSpan.FromSeconds(10));
            output.WriteLine("SKIPPED: the cgroup has no memory controller on this host");
            return;
        }
        // 32 MiB of anonymous memory, every page written, held while it is measured.
        using var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "read go; x=$(head -c 33554432 /dev/zero | tr '\\0' a); echo held; read done" },
            RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        try
        {
            var empty = MemoryCharge.Read((int)stat.DangerousGetHandle(), (int)usage.DangerousGetHandle());
            Assert.NotNull(empty);
            cgroup.AddProcess(holder.Id);
            await holder.StandardInput.WriteLineAsync("go");
            await holder.StandardInput.FlushAsync();
            Assert.Equal("held", await holder.StandardOutput.ReadLineAsync());
            var charge = MemoryCharge.Read((int)stat.DangerousGetHandle(), (int)usage.DangerousGetHandle());
            output.WriteLine($"empty: {empty}; holding 32 MiB: {charge}");
            Assert.NotNull(charge);
            Assert.InRange(charge.Value.Unreclaimable, 32UL << 20, 200UL << 20);
            Assert.InRange(charge.Value.Anon, 32UL << 20, 200UL << 20);
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            await holder.WaitForExitAsync();
            stat.Dispose();
            usage.Dispose();
            cgroup.Delete(TimeSpan.FromSeconds(10));
        }
    }
}
