// rootfs_test.c: the instance constructor's lookups and mounts inside a rootfs (src/Containerd.Shim.Wasm/native/
// rootfs.c), against a hostile tree on disk, with each resolver (openat2, the walk) and each mount API (descriptor
// based, mount(2)). Run as root by tests/Shim.Tests/NativeRootfsTests.cs; the mounts happen in a private mount
// namespace of this process, so nothing is left on the host. Prints one line per failed check; exit 0 means all held.
#define _GNU_SOURCE
#include "../../src/Containerd.Shim.Wasm/native/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int failures;
static char base[256], rootfs[300], host[300];

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

static void put(const char *dir, const char *rel, const char *content) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

static void sub(const char *dir, const char *rel) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(2);
    }
}

static void link_(const char *target, const char *dir, const char *rel) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (symlink(target, path) != 0) {
        perror(path);
        exit(2);
    }
}

// What the descriptor leads to, read through it.
static void content(int fd, char *out, size_t size) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    out[0] = '\0';
    int r = open(proc, O_RDONLY | O_CLOEXEC);
    if (r < 0)
        return;
    ssize_t n = read(r, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    close(r);
}

// Where the descriptor leads, as a path.
static void where(int fd, char *out, size_t size) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, out, size - 1);
    out[n > 0 ? n : 0] = '\0';
}

static void resolution(int root, const char *name) {
    char buf[1200], want[1200];
    int fd = rootfs_open(root, "/abs-link");
    content(fd, buf, sizeof buf);
    CHECK(fd >= 0 && strcmp(buf, "image passwd\n") == 0, "%s: /abs-link -> /etc/passwd reads the image's file, got '%s'", name, buf);
    close(fd);
    fd = rootfs_open(root, "/up/passwd");
    content(fd, buf, sizeof buf);
    CHECK(fd >= 0 && strcmp(buf, "image passwd\n") == 0, "%s: ../../../etc stops at the root, got '%s'", name, buf);
    close(fd);
    fd = rootfs_open(root, "/../../../../etc/passwd");
    content(fd, buf, sizeof buf);
    CHECK(fd >= 0 && strcmp(buf, "image passwd\n") == 0, "%s: .. above the root stays at the root, got '%s'", name, buf);
    close(fd);
    fd = rootfs_open(root, "/hostlink/secret");
    CHECK(fd == -ENOENT, "%s: a link to the host's folder resolves inside the rootfs (got %d)", name, fd);
    if (fd >= 0)
        close(fd);
    fd = rootfs_open(root, "/loop");
    CHECK(fd == -ELOOP, "%s: a symlink loop is ELOOP (got %d)", name, fd);
    fd = rootfs_open(root, "/etc/passwd/x");
    CHECK(fd == -ENOTDIR, "%s: a file in the middle is ENOTDIR (got %d)", name, fd);
    fd = rootfs_open(root, "/");
    where(fd, buf, sizeof buf);
    CHECK(fd >= 0 && strcmp(buf, rootfs) == 0, "%s: / is the rootfs, got '%s'", name, buf);
    close(fd);

    // Mount points: made inside the rootfs, through the link to the host's folder, never in the host's folder.
    fd = rootfs_make(root, "/hostlink/made/deep", 1);
    where(fd, buf, sizeof buf);
    snprintf(want, sizeof want, "%s%s/made/deep", rootfs, host);
    CHECK(fd >= 0 && strcmp(buf, want) == 0, "%s: mount point through a link to the host lands at %s, got '%s'", name, want, buf);
    close(fd);
    snprintf(want, sizeof want, "%s/made", host);
    CHECK(access(want, F_OK) != 0, "%s: nothing was made in the host folder", name);
    // A dangling link is followed and its target made, inside the rootfs.
    fd = rootfs_make(root, "/etc/resolv.conf", 0);
    where(fd, buf, sizeof buf);
    snprintf(want, sizeof want, "%s/run/resolve/stub.conf", rootfs);
    CHECK(fd >= 0 && strcmp(buf, want) == 0, "%s: a dangling link's target is made: want %s, got '%s'", name, want, buf);
    CHECK(fd >= 0 && rootfs_is_dir(fd) == 0, "%s: a file mount point is a file", name);
    close(fd);
}

static int read_only(const char *path) {
    struct statvfs sv;
    return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

static void mounts(int root, const char *name) {
    char src[600], path[600];
    const char *step = "";
    // A volume with a submount, bound recursively read-only: the submount too (MS_REMOUNT could not do that).
    snprintf(src, sizeof src, "%s/volume", base);
    sub(base, "volume");
    sub(base, "volume/sub");
    snprintf(path, sizeof path, "%s/volume/sub", base);
    if (mount("tmpfs", path, "tmpfs", 0, NULL) != 0) {
        perror("tmpfs");
        exit(2);
    }
    int target = rootfs_make(root, "/data", 1);
    int err = rootfs_bind(src, -1, 1, ROOTFS_RDONLY, target, &step);
    if (rootfs_mounter == ROOTFS_MOUNT_LEGACY) {
        CHECK(err == -EOPNOTSUPP, "%s: a read-only bind without mount_setattr is refused (got %d, %s)", name, err, step);
        err = rootfs_bind(src, -1, 1, 0, target, &step);
        CHECK(err == 0, "%s: a plain rbind works with mount(2) (%d, %s)", name, err, step);
    } else {
        CHECK(err == 0, "%s: rbind ro (%d, %s)", name, err, step);
        snprintf(path, sizeof path, "%s/data/sub", rootfs);
        CHECK(read_only(path), "%s: the submount of a read-only rbind is read-only", name);
        snprintf(path, sizeof path, "%s/data", rootfs);
        CHECK(read_only(path), "%s: the read-only rbind is read-only", name);
        snprintf(path, sizeof path, "%s/volume/sub", base);
        CHECK(!read_only(path), "%s: the host's mount is untouched", name);
    }
    close(target);

    // A mask over a folder and over a file.
    target = rootfs_open(root, "/etc");
    err = rootfs_mask_dir(target, &step);
    CHECK(err == 0, "%s: mask a folder (%d, %s)", name, err, step);
    snprintf(path, sizeof path, "%s/etc/passwd", rootfs);
    CHECK(access(path, F_OK) != 0, "%s: the masked folder is empty", name);
    close(target);
    int devnull = open("/dev/null", O_PATH | O_CLOEXEC);
    target = rootfs_open(root, "/secret.txt");
    err = rootfs_bind(NULL, devnull, 0, 0, target, &step);
    CHECK(err == 0, "%s: mask a file (%d, %s)", name, err, step);
    char buf[64];
    int fd = rootfs_open(root, "/secret.txt");
    content(fd, buf, sizeof buf);
    CHECK(buf[0] == '\0', "%s: the masked file reads empty, got '%s'", name, buf);
    close(fd);
    close(target);
    close(devnull);

    target = rootfs_open(root, "/readonly");
    err = rootfs_make_readonly(target, 1, &step);
    snprintf(path, sizeof path, "%s/readonly", rootfs);
    if (rootfs_mounter == ROOTFS_MOUNT_LEGACY)
        CHECK(err == -EOPNOTSUPP, "%s: read-only paths without mount_setattr are refused (got %d)", name, err);
    else
        CHECK(err == 0 && read_only(path), "%s: a read-only path is read-only (%d, %s)", name, err, step);
    close(target);
}

static void tree(void) {
    snprintf(base, sizeof base, "/tmp/rootfs-test-XXXXXX");
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", base);
    snprintf(host, sizeof host, "%s/host", base);
    sub(base, "rootfs");
    sub(base, "host");
    put(host, "secret", "host secret\n");
    sub(rootfs, "etc");
    sub(rootfs, "readonly");
    sub(rootfs, "sub");
    put(rootfs, "etc/passwd", "image passwd\n");
    put(rootfs, "secret.txt", "image secret\n");
    link_("/etc/passwd", rootfs, "abs-link");
    link_("../../../etc", rootfs, "up");
    link_(host, rootfs, "hostlink");
    link_("loop", rootfs, "loop");
    link_("/run/resolve/stub.conf", rootfs, "etc/resolv.conf");
}

int main(void) {
    // Every mount below lands in this process's own mount namespace.
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("private mount namespace");
        return 2;
    }
    static const struct {
        enum rootfs_resolver resolver;
        enum rootfs_mounter mounter;
        const char *name;
    } runs[] = {
        {ROOTFS_OPENAT2, ROOTFS_MOUNT_NEW, "openat2+new mount api"},
        {ROOTFS_WALK, ROOTFS_MOUNT_LEGACY, "walk+mount(2)"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        tree();
        rootfs_resolver = runs[i].resolver;
        rootfs_mounter = runs[i].mounter;
        int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        resolution(root, runs[i].name);
        mounts(root, runs[i].name);
        close(root);
        char cmd[2048];
        // The namespace dies with the process; the tree's mounts go first so the folder can be removed.
        snprintf(cmd, sizeof cmd, "umount -R %s/rootfs/data %s/rootfs/etc %s/rootfs/secret.txt %s/rootfs/readonly "
                                  "%s/volume/sub 2>/dev/null; rm -rf %s", base, base, base, base, base, base);
        if (system(cmd) != 0) {
            // Some of those were never mounted in this run: umount's complaint does not matter.
        }
    }
    printf("%s\n", failures == 0 ? "ok" : "failed");
    return failures == 0 ? 0 : 1;
}
