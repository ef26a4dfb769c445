namespace Containerd.Testing;

/// <summary>
/// Connects to a Unix socket as another user and sends one ttrpc request: what a local unprivileged process can do to a
/// shim's socket. A small C program (built with the machine's gcc into a temporary folder) opens the socket file with
/// O_PATH as root, drops to the uid, and connects through <c>/proc/self/fd</c>, so only the socket's own mode and
/// the server decide, not the modes of the folders above it.
/// </summary>
public static class OtherUserProbe
{
    /// <summary>What happened.</summary>
    public enum Outcome
    {
        /// <summary>The server sent a ttrpc response frame.</summary>
        Answered,

        /// <summary>connect(2) failed with EACCES: the socket's mode keeps the user out.</summary>
        RefusedByMode,

        /// <summary>The connection was accepted and closed without an answer: the server refused the peer.</summary>
        ClosedByServer,
    }

    private const string Source = """
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <grp.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/prctl.h>
        #include <sys/socket.h>
        #include <sys/time.h>
        #include <sys/un.h>
        #include <unistd.h>

        /* probe <socket> <uid|-> : prints answered, refused-by-mode, closed-by-server or an error. */
        int main(int argc, char **argv) {
            if (argc != 3) return 2;
            int target = open(argv[1], O_PATH | O_CLOEXEC);
            if (target < 0) { printf("open failed: errno %d\n", errno); return 1; }
            if (strcmp(argv[2], "-") != 0) {
                uid_t id = (uid_t)atoi(argv[2]);
                if (setgroups(0, NULL) || setresgid(id, id, id) || setresuid(id, id, id)) { printf("setuid failed: errno %d\n", errno); return 1; }
                /* The uid change made /proc/self root's; the fd name below needs it to be ours again. */
                prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
            }
            struct sockaddr_un addr = {.sun_family = AF_UNIX};
            snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d", target);
            int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
                if (errno == EACCES) { printf("refused-by-mode\n"); return 0; }
                printf("connect failed: errno %d\n", errno); return 1;
            }
            /* A ttrpc request (type 1, stream 1) for a method nobody has: any server answers it with an error status. */
            static const char service[] = "probe.Nothing", method[] = "Call";
            unsigned char payload[64];
            size_t n = 0;
            payload[n++] = 0x0a; payload[n++] = sizeof service - 1; memcpy(payload + n, service, sizeof service - 1); n += sizeof service - 1;
            payload[n++] = 0x12; payload[n++] = sizeof method - 1; memcpy(payload + n, method, sizeof method - 1); n += sizeof method - 1;
            unsigned char frame[80] = {0, 0, 0, (unsigned char)n, 0, 0, 0, 1, 1, 0};
            memcpy(frame + 10, payload, n);
            struct timeval tv = {10, 0};
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (send(s, frame, 10 + n, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) { printf("send failed: errno %d\n", errno); return 1; }
            unsigned char header[10];
            ssize_t got = recv(s, header, sizeof header, MSG_WAITALL);
            if (got == (ssize_t)sizeof header && header[8] == 2) { printf("answered\n"); return 0; }
            if (got == 0 || (got < 0 && errno == ECONNRESET)) { printf("closed-by-server\n"); return 0; }
            printf("recv: %zd bytes, errno %d\n", got, errno);
            return 1;
        }
        """;

    /// <summary>Runs the probe against <paramref name="socketPath"/> as <paramref name="uid"/> (null: as this process).</summary>
    public static async Task<Outcome> RunAsync(string socketPath, int? uid)
    {
        var dir = Directory.CreateTempSubdirectory("other-user-probe-").FullName;
        try
        {
            var source = Path.Combine(dir, "probe.c");
            var binary = Path.Combine(dir, "probe");
            await File.WriteAllTextAsync(source, Source);
            var build = await ProcessRunner.RunAsync("gcc", ["-O1", "-o", binary, source], timeout: TimeSpan.FromSeconds(60));
            if (build.ExitCode != 0)
            {
                throw new InvalidOperationException($"building the probe: {build}");
            }
            var run = await ProcessRunner.RunAsync(binary, [socketPath, uid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"],
                timeout: TimeSpan.FromSeconds(30));
            return run.Stdout.Trim() switch
            {
                "answered" => Outcome.Answered,
                "refused-by-mode" => Outcome.RefusedByMode,
                "closed-by-server" => Outcome.ClosedByServer,
                _ => throw new InvalidOperationException($"probe of {socketPath} as uid {uid}: {run}"),
            };
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
