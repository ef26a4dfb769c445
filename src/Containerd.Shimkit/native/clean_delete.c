// clean_delete.c: `<shim> ... delete` after a clean shutdown, answered before the .NET runtime starts.
//
// Part of the shim binary contract (Containerd.Shimkit), linked into every NativeAOT shim executable by
// ShimDelete.targets. containerd runs `<shim> ... delete` whenever a shim's connection closes, a clean exit included,
// and waits for it before its task Delete returns, so every container pays for one more process start, most of it the
// runtime's. When the server left ShimDelete.CleanShutdownFile ("shim-clean-shutdown") in the bundle (Shutdown with
// no task left: everything was cleaned through the Task API), the answer needs no runtime: a DeleteResponse with
// pid 0, exit status 0 and exited_at now, the same one ShimDelete.cs writes. Anything else (no marker, another
// action, a bundle path too long) returns and lets .NET start, where ShimDelete.Run does the full cleanup.
// Checked by tests/native/clean_delete_main.c (NativeCleanDeleteTests) and CleanShutdownDeleteTests.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Protobuf's base-128 varint: seven bits a byte, low bits first, the high bit set on every byte but the last.
static size_t put_varint(unsigned char *out, uint64_t v) {
    size_t n = 0;
    do {
        out[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return n;
}

__attribute__((constructor)) static void clean_delete(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 2 || strcmp(argv[argc - 1], "delete") != 0)
        return;
    // Go flag syntax, as ShimFlags.cs parses it: -bundle D, --bundle D, -bundle=D; the bundle defaults to the cwd.
    const char *bundle = ".";
    for (int i = 1; i < argc - 1; i++) {
        if (argv[i][0] != '-')
            continue;
        const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
        if (strcmp(name, "bundle") == 0 && i + 1 < argc - 1)
            bundle = argv[++i];
        else if (strncmp(name, "bundle=", 7) == 0)
            bundle = name + 7;
    }
    char marker[4096];
    int len = snprintf(marker, sizeof marker, "%s/shim-clean-shutdown", bundle[0] != '\0' ? bundle : ".");
    if (len <= 0 || (size_t)len >= sizeof marker || access(marker, F_OK) != 0)
        return;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return;
    // DeleteResponse field 3 (exited_at, google.protobuf.Timestamp: 1 seconds, 2 nanos); pid and status are 0,
    // which protobuf leaves out.
    unsigned char ts[24], msg[32];
    size_t t = 0;
    ts[t++] = 0x08;
    t += put_varint(ts + t, (uint64_t)now.tv_sec);
    ts[t++] = 0x10;
    t += put_varint(ts + t, (uint64_t)now.tv_nsec);
    size_t m = 0;
    msg[m++] = 0x1a;
    m += put_varint(msg + m, t);
    memcpy(msg + m, ts, t);
    m += t;
    for (size_t off = 0; off < m;) {
        ssize_t n = write(STDOUT_FILENO, msg + off, m - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(1);
        off += (size_t)n;
    }
    _exit(0);
}
