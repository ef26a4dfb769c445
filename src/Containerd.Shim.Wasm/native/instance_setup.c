// instance_setup.c: the part of an instance process that must run before the .NET runtime starts.
//
// Joining a mount or user namespace (setns), unsharing the mount namespace, and changing uid/gid/groups and
// capabilities for the whole process are only possible, or only correct, while the process has one thread. A
// NativeAOT process already has several when Main runs, and capabilities, setns(CLONE_NEWNET) and no_new_privs are
// per thread. So, as runc does with nsexec inside a Go program, this constructor runs first (glibc calls it with
// argc/argv/envp before main), applies a setup plan the shim wrote from the OCI spec, and returns to let .NET start.
//
// It acts only in the instance role (argv[1] == "--instance") and only when fd 5 is open: the shim (C#,
// InstanceSetupPlan.cs) parses the spec and writes the plan there; this file never parses JSON. Plan: text lines of
// tab-separated fields, fixed order of execution regardless of line order:
//   wasm-instance-setup 1                  header
//   join <type> <path>                     setns (type: user ipc uts net mnt cgroup); user first, mnt last
//   new <type>                             unshare (ipc uts net mnt cgroup); a new net gets lo up
//   hostname <name>                        sethostname, only in a new uts namespace
//   bind <r|-><o|-> <source> <target>      bind mount (r: recursive, o: read-only) in the private mount namespace
//   rlimit <resource> <soft> <hard>        setrlimit (numbers; RLIM_INFINITY as 18446744073709551615)
//   umask <mode>                           umask (octal)
//   user <uid> <gid> [<gid>,<gid>...]      setgroups(additional gids), setgid, setuid
//   caps <bounding> <effective> <permitted> <inheritable> <ambient>   64-bit masks in hex
//   nnp                                    prctl(PR_SET_NO_NEW_PRIVS)
// Afterwards fd 5 holds config.json (opened from the cwd, the bundle) and the cwd is the rootfs (argv[4]), so that
// .NET can read both even when the new identity cannot search the bundle (0700 root).
// On failure it writes "error <grpc code> instance setup: <step>: <reason>" on the control pipe (fd 3, the protocol
// of ControlChannel.cs) and exits with 125: the shim turns that into a Create failure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PLAN_FD 5
#define CONTROL_FD 3
#define SETUP_FAILED 125 // ExitCodes.InternalError
#define MAX_PLAN (64 * 1024)
#define MAX_ITEMS 128
#define MAX_FIELDS 8
#define MAX_GROUPS 65536 // NGROUPS_MAX

static char plan[MAX_PLAN + 1];

struct line {
    char *f[MAX_FIELDS];
    int n;
};

static struct line lines[4 * MAX_ITEMS];
static int line_count;

// Reports on the control pipe in ControlChannel's format and exits before .NET ever starts.
static void fail(int err, const char *fmt, ...) {
    char msg[1024];
    int code = err == ENOENT ? 5 /* NotFound */ : (err == EPERM || err == EACCES) ? 7 /* PermissionDenied */ : 13;
    int len = snprintf(msg, sizeof msg, "error %d instance setup: ", err == 0 ? 3 /* InvalidArgument */ : code);
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(msg + len, sizeof msg - len, fmt, ap);
    va_end(ap);
    if (err != 0 && len < (int)sizeof msg)
        len += snprintf(msg + len, sizeof msg - len, ": %s (errno %d)", strerror(err), err);
    if (len >= (int)sizeof msg)
        len = sizeof msg - 1;
    if (write(CONTROL_FD, msg, len) < 0) {
        // Nothing else to tell: the shim sees EOF and the exit status.
    }
    _exit(SETUP_FAILED);
}

static unsigned long long number(const char *s, int base, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno != 0 || end == s || *end != '\0')
        fail(0, "malformed plan: %s '%s' is not a number", what, s);
    return v;
}

// Splits the plan in place into lines of tab-separated fields; no allocation.
static void parse(size_t size) {
    plan[size] = '\0';
    char *p = plan;
    while (*p != '\0') {
        char *end = strchr(p, '\n');
        if (end == NULL)
            fail(0, "malformed plan: last line not terminated");
        *end = '\0';
        if (line_count == (int)(sizeof lines / sizeof lines[0]))
            fail(0, "malformed plan: too many lines");
        struct line *l = &lines[line_count++];
        for (char *field = p; field != NULL && l->n < MAX_FIELDS;) {
            l->f[l->n++] = field;
            field = strchr(field, '\t');
            if (field != NULL)
                *field++ = '\0';
        }
        p = end + 1;
    }
    if (line_count == 0 || strcmp(lines[0].f[0], "wasm-instance-setup 1") != 0)
        fail(0, "malformed plan: missing header 'wasm-instance-setup 1'");
}

static int ns_flag(const char *type) {
    static const struct { const char *name; int flag; } types[] = {
        {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
        {"net", CLONE_NEWNET},   {"mnt", CLONE_NEWNS},  {"cgroup", CLONE_NEWCGROUP},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(type, types[i].name) == 0)
            return types[i].flag;
    fail(0, "malformed plan: unknown namespace type '%s'", type);
    return 0;
}

// Lines of one kind, in plan order: for (l = next(kind, -1); l; l = next(kind, l - lines)).
static struct line *next(const char *kind, long after) {
    for (int i = (int)after + 1; i < line_count; i++)
        if (strcmp(lines[i].f[0], kind) == 0)
            return &lines[i];
    return NULL;
}

static void need(struct line *l, int fields) {
    if (l->n < fields)
        fail(0, "malformed plan: '%s' needs %d fields", l->f[0], fields - 1);
}

static void join_namespaces(void) {
    // Open every namespace first: after joining a mount namespace, the other paths may no longer resolve.
    int fds[MAX_ITEMS], flags[MAX_ITEMS], count = 0;
    struct line *joins[MAX_ITEMS];
    for (struct line *l = next("join", -1); l && count < MAX_ITEMS; l = next("join", l - lines)) {
        need(l, 3);
        joins[count] = l;
        flags[count] = ns_flag(l->f[1]);
        fds[count] = open(l->f[2], O_RDONLY | O_CLOEXEC);
        if (fds[count] < 0)
            fail(errno, "open %s namespace %s", l->f[1], l->f[2]);
        count++;
    }
    // The user namespace first (it grants the capabilities the other joins need), the mount namespace last.
    static const int order[] = {CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWNS};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (int i = 0; i < count; i++)
            if (flags[i] == order[o]) {
                if (setns(fds[i], flags[i]) != 0)
                    fail(errno, "setns %s namespace %s", joins[i]->f[1], joins[i]->f[2]);
                close(fds[i]);
            }
}

// A new network namespace starts with lo down; as runc does, bring it up so a guest can use 127.0.0.1.
static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail(errno, "socket to configure the loopback interface");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        fail(errno, "read the loopback interface's flags");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        fail(errno, "bring the loopback interface up");
    close(s);
}

static void new_namespaces(void) {
    int flags = 0;
    for (struct line *l = next("new", -1); l; l = next("new", l - lines)) {
        need(l, 2);
        flags |= ns_flag(l->f[1]);
    }
    if (flags != 0 && unshare(flags) != 0)
        fail(errno, "unshare namespaces (flags 0x%x)", flags);
    if (flags & CLONE_NEWNET)
        loopback_up();
    struct line *h = next("hostname", -1);
    if (h != NULL && (flags & CLONE_NEWUTS)) {
        need(h, 2);
        if (sethostname(h->f[1], strlen(h->f[1])) != 0)
            fail(errno, "sethostname %s", h->f[1]);
    }
    if (flags & CLONE_NEWNS) {
        // Our copy of the host's mounts must not send anything back: every bind below stays in this process.
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            fail(errno, "make / private in the new mount namespace");
    }
}

static void bind_mounts(void) {
    // The shim created each target (a file or a folder, as the source) inside the rootfs, after resolving symlinks
    // there, so a hostile image cannot point a target outside the rootfs.
    for (struct line *l = next("bind", -1); l; l = next("bind", l - lines)) {
        need(l, 4);
        const char *flags = l->f[1], *src = l->f[2], *dst = l->f[3];
        unsigned long rec = strchr(flags, 'r') ? MS_REC : 0;
        if (mount(src, dst, NULL, MS_BIND | rec, NULL) != 0)
            fail(errno, "bind mount %s on %s", src, dst);
        if (strchr(flags, 'o') && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | rec, NULL) != 0)
            fail(errno, "remount %s read-only", dst);
    }
}

static void rlimits(void) {
    for (struct line *l = next("rlimit", -1); l; l = next("rlimit", l - lines)) {
        need(l, 4);
        int resource = (int)number(l->f[1], 10, "rlimit resource");
        struct rlimit r = {.rlim_cur = number(l->f[2], 10, "soft limit"), .rlim_max = number(l->f[3], 10, "hard limit")};
        if (setrlimit(resource, &r) != 0)
            fail(errno, "setrlimit %d soft %s hard %s", resource, l->f[2], l->f[3]);
    }
    struct line *u = next("umask", -1);
    if (u != NULL) {
        need(u, 2);
        umask((mode_t)number(u->f[1], 8, "umask"));
    }
}

// config.json is opened first, from the cwd (the bundle), before a joined mount namespace could change what the
// path means.
static int open_config(void) {
    int fd = open("config.json", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open config.json in the bundle");
    return fd;
}

// Hands the .NET side what the new identity may not be able to reach: config.json at fd 5, the rootfs as the cwd.
// The chdir comes after the mounts, so that the cwd is the rootfs as the binds left it.
static void keep_bundle(int config, const char *rootfs) {
    if (dup3(config, PLAN_FD, O_CLOEXEC) < 0)
        fail(errno, "dup config.json to fd %d", PLAN_FD);
    close(config);
    if (chdir(rootfs) != 0)
        fail(errno, "chdir to the rootfs %s", rootfs);
}

static int capset_sets(uint64_t eff, uint64_t perm, uint64_t inh) {
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {
        {.effective = (uint32_t)eff, .permitted = (uint32_t)perm, .inheritable = (uint32_t)inh},
        {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32), .inheritable = (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

static void identity(void) {
    struct line *u = next("user", -1), *c = next("caps", -1);
    uint64_t bounding = ~0ULL, eff = 0, perm = 0, inh = 0, amb = 0;
    if (c != NULL) {
        need(c, 6);
        bounding = number(c->f[1], 16, "bounding set");
        eff = number(c->f[2], 16, "effective set");
        perm = number(c->f[3], 16, "permitted set");
        inh = number(c->f[4], 16, "inheritable set");
        amb = number(c->f[5], 16, "ambient set");
        // Dropping from the bounding set needs CAP_SETPCAP, so before the uid changes. Stop at the first cap this
        // kernel does not know (EINVAL).
        for (int cap = 0; cap < 64; cap++) {
            if (bounding & (1ULL << cap))
                continue;
            if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
                if (errno == EINVAL)
                    break;
                fail(errno, "drop capability %d from the bounding set", cap);
            }
        }
    }
    if (u != NULL) {
        need(u, 3);
        uid_t uid = (uid_t)number(u->f[1], 10, "uid");
        gid_t gid = (gid_t)number(u->f[2], 10, "gid");
        // Additional gids: one comma-separated field, so any number fits one line.
        static gid_t groups[MAX_GROUPS];
        int ngroups = 0;
        for (char *g = u->n > 3 ? u->f[3] : NULL, *comma; g != NULL && *g != '\0'; g = comma ? comma + 1 : NULL) {
            comma = strchr(g, ',');
            if (comma != NULL)
                *comma = '\0';
            if (ngroups == MAX_GROUPS)
                fail(0, "more than %d additional gids", MAX_GROUPS);
            groups[ngroups++] = (gid_t)number(g, 10, "additional gid");
        }
        // Keep the permitted set across setuid so the spec's capabilities can be set afterwards.
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
            fail(errno, "prctl PR_SET_KEEPCAPS");
        if (setgroups((size_t)ngroups, groups) != 0)
            fail(errno, "setgroups (%d additional gids)", ngroups);
        if (setgid(gid) != 0)
            fail(errno, "setgid %u", gid);
        if (setuid(uid) != 0)
            fail(errno, "setuid %u", uid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
            fail(errno, "prctl PR_SET_KEEPCAPS off");
    }
    if (c != NULL) {
        if (capset_sets(eff, perm, inh) != 0)
            fail(errno, "capset effective %llx permitted %llx inheritable %llx", (unsigned long long)eff,
                 (unsigned long long)perm, (unsigned long long)inh);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
            fail(errno, "clear the ambient set");
        for (int cap = 0; cap < 64; cap++)
            if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
                fail(errno, "raise ambient capability %d", cap);
    }
    if (next("nnp", -1) != NULL && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail(errno, "prctl PR_SET_NO_NEW_PRIVS");
}

__attribute__((constructor)) static void instance_setup(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 5 || strcmp(argv[1], "--instance") != 0 || fcntl(PLAN_FD, F_GETFD) < 0)
        return;
    size_t size = 0;
    for (;;) {
        ssize_t n = pread(PLAN_FD, plan + size, MAX_PLAN - size, (off_t)size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail(errno, "read the setup plan on fd %d", PLAN_FD);
        if (n == 0)
            break;
        size += (size_t)n;
        if (size == MAX_PLAN)
            fail(0, "setup plan larger than %d bytes", MAX_PLAN);
    }
    parse(size);
    int config = open_config();
    join_namespaces();
    new_namespaces();
    bind_mounts();
    rlimits();
    keep_bundle(config, argv[4]);
    identity();
}

// `delete` after a clean shutdown, answered before .NET starts. containerd runs `<shim> ... delete` whenever a shim's
// connection closes, a clean exit included, and waits for it before its task Delete returns, so every container
// pays for one more process start. When the server left ShimDelete.CleanShutdownFile in the bundle (Shutdown with
// no task left: everything was cleaned through the Task API), the answer needs no runtime: a DeleteResponse with
// pid 0, exit status 0 and exited_at now, the same one ShimDelete.cs writes. Anything else goes on to .NET.
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
