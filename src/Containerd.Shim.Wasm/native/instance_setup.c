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
//   wasm-instance-setup 2                  header
//   join <type> <path>                     setns (type: user ipc uts net mnt cgroup); user first, mnt last
//   new <type>                             unshare (ipc uts net mnt cgroup); a new net gets lo up; mnt is always there
//   hostname <name>                        sethostname, only in a new uts namespace
//   bind <flags> <source> <dest> <label>   bind mount in spec order; flags r recursive, o read-only (the whole bound
//                                          tree), s nosuid, d nodev, x noexec; <dest> resolved inside the rootfs
//   mask <path>                            maskedPaths: /dev/null over a file, an empty read-only tmpfs over a folder
//   readonly <path>                        readonlyPaths: bound onto itself read-only, recursively
//   rootfs ro                              root.readonly: the rootfs mount read-only (volumes keep their own)
//   cgroup <path of cgroup.procs>          joined (one line per hierarchy) before the cgroup namespace is made
//   rlimit <resource> <soft> <hard>        setrlimit (numbers; RLIM_INFINITY as 18446744073709551615)
//   umask <mode>                           umask (octal)
//   user <uid> <gid> [<gid>,<gid>...]      setgroups(additional gids), setgid, setuid
//   caps <bounding> <effective> <permitted> <inheritable> <ambient> <raise effective> <raise permitted>
//                                          64-bit masks in hex, as they are after the execve runc would make
//                                          (Capabilities.cs); the raise sets hold while the ambient set is raised
//   nnp                                    prctl(PR_SET_NO_NEW_PRIVS)
// Every path from the spec or the image is resolved by descriptor inside the rootfs, after the mounts before it
// (rootfs.c). The rootfs is bound onto itself in the instance's own mount namespace, so it can be pivoted into.
// The pivot itself waits until .NET has opened what it needs of the host (the engine library, the module, the
// compile cache): a helper process forked here, before the identity changes, keeps the privilege to do it, waits on
// fd 9, and pivot_roots the shared mount namespace, and with it the instance process, when .NET asks
// (InstanceConfinement.cs). Afterwards fd 5 holds config.json (opened from the cwd, the bundle) and the cwd is the
// rootfs, so that .NET can read both even when the new identity cannot search the bundle (0700 root).
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
#include <sys/wait.h>
#include <unistd.h>

#include "rootfs.h"

#define PLAN_FD 5
#define PIVOT_FD 9 // InstanceConfinement.PivotFd
#define CONTROL_FD 3
#define SETUP_FAILED 125 // ExitCodes.InternalError
#define MAX_PLAN (64 * 1024)
#define MAX_ITEMS 128
#define MAX_FIELDS 10
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
    if (line_count == 0 || strcmp(lines[0].f[0], "wasm-instance-setup 2") != 0)
        fail(0, "malformed plan: missing header 'wasm-instance-setup 2'");
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

// Every namespace but the cgroup one, which must wait until the cgroup is joined (it is rooted where the process is).
static void new_namespaces(void) {
    int flags = CLONE_NEWNS;
    for (struct line *l = next("new", -1); l; l = next("new", l - lines)) {
        need(l, 2);
        flags |= ns_flag(l->f[1]);
    }
    flags &= ~CLONE_NEWCGROUP;
    if (unshare(flags) != 0)
        fail(errno, "unshare namespaces (flags 0x%x)", flags);
    if (flags & CLONE_NEWNET)
        loopback_up();
    struct line *h = next("hostname", -1);
    if (h != NULL && (flags & CLONE_NEWUTS)) {
        need(h, 2);
        if (sethostname(h->f[1], strlen(h->f[1])) != 0)
            fail(errno, "sethostname %s", h->f[1]);
    }
    // Our copy of the host's mounts must not send anything back: every mount below stays in this process.
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail(errno, "make / private in the new mount namespace");
}

// The rootfs as a mount of its own (pivot_root needs one), and its descriptor: the root of every lookup below.
static int rootfs_mount(const char *rootfs) {
    if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) != 0)
        fail(errno, "bind the rootfs %s onto itself", rootfs);
    int fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "open the rootfs %s", rootfs);
    return fd;
}

static unsigned bind_attrs(const char *flags) {
    return (strchr(flags, 'o') ? ROOTFS_RDONLY : 0) | (strchr(flags, 's') ? ROOTFS_NOSUID : 0) |
           (strchr(flags, 'd') ? ROOTFS_NODEV : 0) | (strchr(flags, 'x') ? ROOTFS_NOEXEC : 0);
}

// Fails naming the mount, its destination and what went wrong (err is a positive errno, or 0 for a plain reason).
static void fail_resolve(int err, const char *what, const char *dest, const char *action) {
    if (err == ENOENT)
        fail(err, "%s: destination %s: %s", what, dest, action);
    fail(err, "%s: destination %s: %s (resolved inside the rootfs)", what, dest, action);
}

static void bind_mounts(int root) {
    for (struct line *l = next("bind", -1); l; l = next("bind", l - lines)) {
        need(l, 5);
        const char *flags = l->f[1], *src = l->f[2], *dst = l->f[3], *what = l->f[4];
        struct stat st;
        if (stat(src, &st) != 0)
            fail(errno, "%s: source %s", what, src);
        int dir = S_ISDIR(st.st_mode);
        // Resolved now, after the mounts before it: a symlink that an earlier volume brought in is followed
        // inside the rootfs like any other, never to the host.
        int target = rootfs_make(root, dst, dir);
        if (target < 0)
            fail_resolve(-target, what, dst, "cannot make the mount point");
        int is_dir = rootfs_is_dir(target);
        if (is_dir != dir)
            fail(0, "%s: destination %s is %s inside the rootfs, and the source %s is %s", what, dst,
                 is_dir ? "a directory" : "not a directory", src, dir ? "a directory" : "not");
        const char *step = "";
        int err = rootfs_bind(src, -1, strchr(flags, 'r') != NULL, bind_attrs(flags), target, &step);
        if (err < 0)
            fail(-err, "%s: bind %s on %s: %s", what, src, dst, step);
        close(target);
    }
}

// maskedPaths and readonlyPaths, resolved inside the rootfs after every mount; paths the container does not have
// are skipped, as runc skips them.
static void masked_and_readonly_paths(int root, int devnull) {
    for (struct line *l = next("mask", -1); l; l = next("mask", l - lines)) {
        need(l, 2);
        int target = rootfs_open(root, l->f[1]);
        if (target == -ENOENT)
            continue;
        if (target < 0)
            fail(-target, "linux.maskedPaths %s", l->f[1]);
        const char *step = "";
        int err = rootfs_is_dir(target) == 1 ? rootfs_mask_dir(target, &step) : rootfs_bind(NULL, devnull, 0, 0, target, &step);
        if (err < 0)
            fail(-err, "linux.maskedPaths %s: %s", l->f[1], step);
        close(target);
    }
    for (struct line *l = next("readonly", -1); l; l = next("readonly", l - lines)) {
        need(l, 2);
        int target = rootfs_open(root, l->f[1]);
        if (target == -ENOENT)
            continue;
        if (target < 0)
            fail(-target, "linux.readonlyPaths %s", l->f[1]);
        const char *step = "";
        int err = rootfs_make_readonly(target, 1, &step);
        if (err < 0)
            fail(-err, "linux.readonlyPaths %s: %s", l->f[1], step);
        close(target);
    }
}

// root.readonly: the rootfs mount only; the volumes bound into it keep their own mode. Through the rootfs's path,
// which the shim chose (never a tenant) and at which our own bind is the top mount.
static void readonly_rootfs(const char *rootfs) {
    struct line *l = next("rootfs", -1);
    if (l == NULL || l->n < 2 || strcmp(l->f[1], "ro") != 0)
        return;
    if (mount(NULL, rootfs, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
        fail(errno, "make the rootfs read-only");
}

// The helper that pivots the instance into its rootfs once .NET has what it needs of the host. It is forked while
// the process is still root with every capability, before it joins the container's cgroup; it does nothing until
// .NET writes 'p' on its socket (fd 9 of the instance), then pivot_roots the mount namespace it shares with the
// instance, which moves every thread of the instance whose root was the old root (pivot_root(2)), detaches the old
// root, answers "<pid> ok" or "<pid> error <code> <reason>", and exits. Should the instance die first, the helper
// dies with it (PDEATHSIG, or EOF on the socket).
#define HELPER_SOCKET 1000
#define HELPER_ROOT 1001

static void close_from(unsigned first, unsigned last) {
    if (syscall(SYS_close_range, first, last, 0) == 0)
        return;
    for (unsigned fd = first; fd <= last && fd < 65536; fd++)
        close((int)fd);
}

// Returns the instance's end of the helper's socket; the caller moves it to PIVOT_FD once every descriptor of its
// own is closed (until then PIVOT_FD may be one of them, a cgroup file for instance).
static int pivot_helper(int root) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        fail(errno, "socketpair for the pivot helper");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail(errno, "fork the pivot helper");
    if (pid > 0) {
        close(sv[1]);
        return sv[0];
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
        _exit(1);
    // Only its socket and the rootfs stay open: the container's stdio, control pipe and the rest are the instance's.
    if (dup3(sv[1], HELPER_SOCKET, O_CLOEXEC) < 0 || dup3(root, HELPER_ROOT, O_CLOEXEC) < 0)
        _exit(1);
    close_from(0, HELPER_SOCKET - 1);
    close_from(HELPER_ROOT + 1, ~0U);
    sv[1] = HELPER_SOCKET;
    root = HELPER_ROOT;
    char go;
    ssize_t n;
    do
        n = read(sv[1], &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || go != 'p')
        _exit(0);
    char reply[512];
    int len;
    // pivot_root(".", ".") stacks the old root on the new one; detaching the top of "." then leaves only the rootfs.
    if (fchdir(root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) {
        int err = errno;
        len = snprintf(reply, sizeof reply, "%d error 13 instance setup: pivot into the rootfs: %s (errno %d)",
                       (int)getpid(), strerror(err), err);
    } else {
        len = snprintf(reply, sizeof reply, "%d ok", (int)getpid());
    }
    if (write(sv[1], reply, (size_t)len) < 0) {
        // The instance sees EOF without an answer and fails the container.
    }
    _exit(0);
}

// The container's cgroup, joined before the cgroup namespace is made (so that it is rooted there) and before .NET
// reads anything of the container (so the device rules and the memory limit already hold). The files were opened
// before any namespace was entered.
static void join_cgroup(const int *fds, struct line **paths, int count) {
    for (int i = 0; i < count; i++) {
        if (write(fds[i], "0", 1) != 1)
            fail(errno, "join the container's cgroup (%s)", paths[i]->f[1]);
        close(fds[i]);
    }
    for (struct line *l = next("new", -1); l; l = next("new", l - lines))
        if (strcmp(l->f[1], "cgroup") == 0 && unshare(CLONE_NEWCGROUP) != 0)
            fail(errno, "unshare the cgroup namespace");
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
static void keep_bundle(int config, int root) {
    if (dup3(config, PLAN_FD, O_CLOEXEC) < 0)
        fail(errno, "dup config.json to fd %d", PLAN_FD);
    close(config);
    if (fchdir(root) != 0)
        fail(errno, "chdir to the rootfs");
    close(root);
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
    uint64_t bounding = ~0ULL, eff = 0, perm = 0, inh = 0, amb = 0, raise_eff = 0, raise_perm = 0;
    if (c != NULL) {
        need(c, 8);
        bounding = number(c->f[1], 16, "bounding set");
        eff = number(c->f[2], 16, "effective set");
        perm = number(c->f[3], 16, "permitted set");
        inh = number(c->f[4], 16, "inheritable set");
        amb = number(c->f[5], 16, "ambient set");
        raise_eff = number(c->f[6], 16, "effective set while raising");
        raise_perm = number(c->f[7], 16, "permitted set while raising");
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
        // The spec's own sets first, so the kernel judges the ambient set against them as it does for runc; then the
        // sets the execve runc makes next would leave (no execve follows here: the guest runs in this process).
        if (capset_sets(raise_eff, raise_perm, inh) != 0)
            fail(errno, "capset effective %llx permitted %llx inheritable %llx", (unsigned long long)raise_eff,
                 (unsigned long long)raise_perm, (unsigned long long)inh);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
            fail(errno, "clear the ambient set");
        for (int cap = 0; cap < 64; cap++)
            if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
                fail(errno, "raise ambient capability %d", cap);
        if (capset_sets(eff, perm, inh) != 0)
            fail(errno, "capset effective %llx permitted %llx inheritable %llx", (unsigned long long)eff,
                 (unsigned long long)perm, (unsigned long long)inh);
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
    // Opened in the host's view, before any namespace is entered: the cgroup's files.
    int cgroup_fds[MAX_ITEMS], cgroups = 0;
    struct line *cgroup_lines[MAX_ITEMS];
    for (struct line *l = next("cgroup", -1); l && cgroups < MAX_ITEMS; l = next("cgroup", l - lines)) {
        need(l, 2);
        cgroup_lines[cgroups] = l;
        cgroup_fds[cgroups] = open(l->f[1], O_WRONLY | O_CLOEXEC);
        if (cgroup_fds[cgroups] < 0)
            fail(errno, "open %s", l->f[1]);
        cgroups++;
    }
    join_namespaces();
    new_namespaces();
    // The masks' /dev/null is opened in the new mount namespace: open_tree clones only mounts of the caller's own.
    int devnull = open("/dev/null", O_PATH | O_CLOEXEC);
    if (devnull < 0)
        fail(errno, "open /dev/null");
    // Mount points are made as root, with the usual mode, whatever the shim's umask; the spec's comes later.
    umask(022);
    int root = rootfs_mount(argv[4]);
    bind_mounts(root);
    masked_and_readonly_paths(root, devnull);
    readonly_rootfs(argv[4]);
    close(devnull);
    int helper = pivot_helper(root);
    join_cgroup(cgroup_fds, cgroup_lines, cgroups);
    rlimits();
    keep_bundle(config, root);
    if (helper != PIVOT_FD) {
        if (dup3(helper, PIVOT_FD, O_CLOEXEC) < 0)
            fail(errno, "dup the pivot helper's socket to fd %d", PIVOT_FD);
        close(helper);
    }
    identity();
}
