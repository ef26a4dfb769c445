using System.Diagnostics;
using Containerd.Testing;
using Xunit;

namespace Shim.Tests;

/// <summary>
/// Compiled profiles judged by the kernel: tests/Shim.Tests/native/seccomp_probe.c, built here with gcc, installs a
/// profile on itself exactly as the instance process does (no_new_privs, TSYNC and the profile's flags), makes one
/// system call and reports by its exit status (see the C file). The test process itself is never confined.
/// </summary>
public sealed class KitSeccompBehaviourTests : IClassFixture<KitSeccompBehaviourTests.ProbeBinary>
{
    private const int SigsysDeath = 128 + 31;
    private const int ThreadDied = 250;
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    private readonly ProbeBinary _probe;

    public KitSeccompBehaviourTests(ProbeBinary probe) => _probe = probe;

    /// <summary>The probe, compiled once for the class into a folder removed afterwards.</summary>
    public sealed class ProbeBinary : IAsyncLifetime
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("seccomp-probe-").FullName;

        public string Path => System.IO.Path.Combine(Dir, "seccomp-probe");

        public async Task InitializeAsync()
        {
            var source = System.IO.Path.Combine(RepositoryLayout.RepoRoot, "tests", "Shim.Tests", "native", "seccomp_probe.c");
            var gcc = await ProcessRunner.RunAsync("gcc", ["-O2", "-Wall", "-Werror", "-pthread", "-o", Path, source], null, TimeSpan.FromSeconds(60));
            Assert.True(gcc.Succeeded, $"gcc: {gcc}");
        }

        public Task DisposeAsync()
        {
            Directory.Delete(Dir, recursive: true);
            return Task.CompletedTask;
        }
    }

    /// <summary>A profile that errs with <paramref name="errno"/> on getppid when its arguments meet <paramref name="args"/>.</summary>
    private static string GetppidRule(string args, int errno = 42) => $$"""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": {{errno}}, "args": [{{args}}]}]}
        """;

    /// <summary>
    /// An allow list long enough for libseccomp's binary-tree layout (more than 32 system calls), default EPERM, in
    /// the shape of containerd's default profile: <paramref name="extra"/> plus what the probe needs to exit.
    /// </summary>
    internal static string AllowList(IEnumerable<string> extra)
    {
        string[] common =
        [
            "exit", "exit_group", "futex", "read", "write", "close", "fstat", "lseek", "mmap", "mprotect", "munmap", "brk",
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "ioctl", "pread64", "pwrite64", "readv", "writev", "access",
            "pipe", "select", "sched_yield", "mremap", "msync", "mincore", "madvise", "dup", "dup2", "nanosleep", "getpid",
            "socket", "connect", "accept", "sendto", "recvfrom", "clone", "wait4", "kill", "uname", "fcntl", "flock",
            "fsync", "getcwd", "chdir", "rename", "mkdir", "rmdir", "unlink", "readlink", "umask", "gettimeofday",
            "getrlimit", "getuid", "getgid", "geteuid", "getegid", "setpgid", "getpgrp", "setsid", "sigaltstack",
            "arch_prctl", "gettid", "clock_gettime", "clock_nanosleep", "epoll_wait", "openat", "newfstatat", "set_robust_list",
            "prlimit64", "getrandom", "rseq",
        ];
        var names = string.Join(", ", common.Concat(extra).Select(n => $"\"{n}\""));
        return $$"""
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
             "syscalls": [{"names": [{{names}}], "action": "SCMP_ACT_ALLOW"}]}
            """;
    }

    [Theory]
    [InlineData("SCMP_ACT_ERRNO", null, EPERM)]
    [InlineData("SCMP_ACT_ERRNO", 99, 99)]
    [InlineData("SCMP_ACT_TRACE", null, ENOSYS)] // no tracer attached: the kernel fails the call with ENOSYS
    [InlineData("SCMP_ACT_LOG", null, 0)]
    [InlineData("SCMP_ACT_ALLOW", null, 0)]
    [InlineData("SCMP_ACT_KILL_PROCESS", null, SigsysDeath)]
    [InlineData("SCMP_ACT_KILL", null, SigsysDeath)] // the only thread: the process dies with it
    [InlineData("SCMP_ACT_TRAP", null, SigsysDeath)] // SIGSYS with no handler
    public async Task Each_action_is_what_the_kernel_does_to_a_matching_call(string action, int? errno, int expected)
    {
        var errnoJson = errno is null ? "" : $", \"errnoRet\": {errno}";
        var defaultAction = action == "SCMP_ACT_ALLOW" ? "SCMP_ACT_ERRNO" : "SCMP_ACT_ALLOW";
        var extra = action == "SCMP_ACT_ALLOW" ? """, {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}""" : "";
        var profile = $$"""{"defaultAction": "{{defaultAction}}", "syscalls": [{"names": ["getppid"], "action": "{{action}}"{{errnoJson}}}{{extra}}]}""";
        Assert.Equal(expected, await ProbeAsync(profile, "getppid"));
    }

    [Fact]
    public async Task The_default_action_and_its_errno_judge_every_call_no_rule_names()
    {
        var profile = """{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 77, "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}""";
        Assert.Equal(77, await ProbeAsync(profile, "getppid"));
        Assert.Equal(EPERM, await ProbeAsync("""{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}""", "getppid"));
        Assert.Equal(SigsysDeath, await ProbeAsync("""{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}]}""", "getppid"));
    }

    [Fact]
    public async Task The_filter_reaches_a_thread_that_existed_before_it_was_installed_and_kill_thread_spares_the_process()
    {
        // The probe's second thread is created before the filter: only TSYNC gives it the filter.
        Assert.Equal(EPERM, await ProbeAsync("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}""", "thread", "getppid"));
        Assert.Equal(ThreadDied, await ProbeAsync("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"}]}""", "thread", "getppid"));
        Assert.Equal(SigsysDeath, await ProbeAsync("""{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}""", "thread", "getppid"));
    }

    [Theory]
    [InlineData("SCMP_CMP_EQ", 5, 0, "5", "6")]
    [InlineData("SCMP_CMP_NE", 5, 0, "6", "5")]
    [InlineData("SCMP_CMP_LT", 5, 0, "4", "5")]
    [InlineData("SCMP_CMP_LE", 5, 0, "5", "6")]
    [InlineData("SCMP_CMP_GE", 5, 0, "5", "4")]
    [InlineData("SCMP_CMP_GT", 5, 0, "6", "5")]
    [InlineData("SCMP_CMP_MASKED_EQ", 0xF0, 0x20, "0x2F", "0x3F")] // value is the mask, valueTwo the masked value
    [InlineData("SCMP_CMP_EQ", 0x100000005, 0, "0x100000005", "5")] // all 64 bits are compared
    [InlineData("SCMP_CMP_GT", 0x100000000, 0, "0x100000001", "0xFFFFFFFF")]
    public async Task Each_comparison_matches_what_it_should_and_nothing_else(string op, ulong value, ulong valueTwo, string matching, string other)
    {
        var profile = GetppidRule($$"""{"index": 3, "value": {{value}}, "valueTwo": {{valueTwo}}, "op": "{{op}}"}""");
        Assert.Equal(42, await ProbeAsync(profile, "getppid", "0", "0", "0", matching));
        Assert.Equal(0, await ProbeAsync(profile, "getppid", "0", "0", "0", other));
    }

    [Fact]
    public async Task Conditions_on_different_arguments_must_all_hold()
    {
        var profile = GetppidRule("""{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 5, "value": 2, "op": "SCMP_CMP_EQ"}""");
        Assert.Equal(42, await ProbeAsync(profile, "getppid", "1", "0", "0", "0", "0", "2"));
        Assert.Equal(0, await ProbeAsync(profile, "getppid", "1", "0", "0", "0", "0", "3"));
        Assert.Equal(0, await ProbeAsync(profile, "getppid", "0", "0", "0", "0", "0", "2"));
    }

    [Fact]
    public async Task Conditions_on_one_argument_are_separate_rules_any_of_which_matches_as_under_runc()
    {
        var profile = GetppidRule("""{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}""");
        Assert.Equal(42, await ProbeAsync(profile, "getppid", "1"));
        Assert.Equal(42, await ProbeAsync(profile, "getppid", "2"));
        Assert.Equal(0, await ProbeAsync(profile, "getppid", "3"));
    }

    [Fact]
    public async Task Writes_to_stdout_can_be_refused_while_stderr_still_works()
    {
        var profile = """{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}""";
        Assert.Equal(EPERM, await ProbeAsync(profile, "write", "1"));
        Assert.Equal(0, await ProbeAsync(profile, "write", "2"));
    }

    [Fact]
    public async Task A_long_allow_list_for_three_architectures_allows_what_it_lists_and_refuses_the_rest()
    {
        Assert.Equal(0, await ProbeAsync(AllowList(["getppid"]), "getppid"));
        Assert.Equal(EPERM, await ProbeAsync(AllowList([]), "getppid"));
    }

    [Theory]
    [InlineData("SECCOMP_FILTER_FLAG_LOG")]
    [InlineData("SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    public async Task The_kernel_takes_each_filter_flag_the_profile_carries(string flag)
    {
        var profile = $$"""{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["{{flag}}"], "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]}""";
        Assert.Equal(9, await ProbeAsync(profile, "getppid"));
    }

    private async Task<int> ProbeAsync(string profileJson, params string[] args)
    {
        var filter = KitSeccompCompilerTests.Compile(profileJson);
        var file = Path.Combine(_probe.Dir, $"{Guid.NewGuid():N}.scf");
        await File.WriteAllBytesAsync(file, filter.ToBytes());
        try
        {
            var psi = new ProcessStartInfo(_probe.Path) { RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(file);
            foreach (var arg in args)
            {
                psi.ArgumentList.Add(arg);
            }
            using var process = Process.Start(psi)!;
            var stderr = await process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
            // 255 is the probe's own failure (it could not read or install the profile): never an outcome to compare.
            Assert.True(process.ExitCode != 255, $"seccomp-probe {string.Join(' ', args)}: {stderr}");
            return process.ExitCode;
        }
        finally
        {
            File.Delete(file);
        }
    }
}
