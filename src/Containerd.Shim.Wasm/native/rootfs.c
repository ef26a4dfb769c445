// rootfs.c: finding and mounting things inside a container's rootfs by descriptor, for the instance process's
// constructor (instance_setup.c), which runs it before .NET starts. Nothing here looks a container path up from the
// host's root: every lookup starts at a descriptor of the rootfs and stays inside it, and every mount is made onto
// the descriptor that lookup returned, so a symlink an image (or an earlier volume) planted cannot send a mount, or
// a mount point being created, anywhere else. The same rules as src/Containerd.Shim.Wasm/RootfsPath.cs, which the
// .NET side uses to find the module and the preopened folders.
#define _GNU_SOURCE
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum rootfs_resolver rootfs_resolver = ROOTFS_AUTO;
enum rootfs_mounter rootfs_mounter = ROOTFS_MOUNT_AUTO;

// From <linux/openat2.h> and <linux/mount.h>, which not every libc's headers carry (and which clash with glibc's
// <sys/mount.h> where they do). The numbers are the same on x86-64 and arm64.
#define NR_open_tree 428
#define NR_move_mount 429
#define NR_fsopen 430
#define NR_fsconfig 431
#define NR_fsmount 432
#define NR_openat2 437
#define NR_mount_setattr 442
#define IN_ROOT 0x10           // RESOLVE_IN_ROOT
#define NO_MAGICLINKS 0x02     // RESOLVE_NO_MAGICLINKS
#define TREE_CLONE 1           // OPEN_TREE_CLONE
#define RECURSIVE 0x8000       // AT_RECURSIVE
#define F_EMPTY 0x04           // MOVE_MOUNT_F_EMPTY_PATH
#define T_EMPTY 0x40           // MOVE_MOUNT_T_EMPTY_PATH
#define ATTR_RDONLY 0x1        // MOUNT_ATTR_RDONLY
#define ATTR_NOSUID 0x2
#define ATTR_NODEV 0x4
#define ATTR_NOEXEC 0x8
#define FS_CLOEXEC 1           // FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC
#define FS_CMD_CREATE 6        // FSCONFIG_CMD_CREATE

#define MAX_LINKS 40  // the kernel's own limit on symlinks in one lookup (ELOOP)
#define MAX_DEPTH 256

struct open_how_v0 {
    uint64_t flags, mode, resolve;
};

struct mount_attr_v0 {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static int openat2_in_root(int root, const char *path) {
    struct open_how_v0 how = {.flags = O_PATH | O_CLOEXEC, .resolve = IN_ROOT | NO_MAGICLINKS};
    // EAGAIN: a rename raced the lookup somewhere in the tree, and the kernel asks to retry.
    for (int attempt = 0; attempt < 16; attempt++) {
        long fd = syscall(NR_openat2, root, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN)
            return -errno;
    }
    return -EAGAIN;
}

static int create_file(int dir, const char *name) {
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? 0 : -errno;
    close(fd);
    return 0;
}

// Only slashes left: the component just taken was the last.
static int at_end(const char *rest) {
    while (*rest == '/')
        rest++;
    return *rest == '\0';
}

// The walk: one component at a time from directory descriptors we hold, never asking the kernel for a parent (".."
// pops our own stack, so a folder renamed out of the rootfs meanwhile cannot take us along), opening each component
// with O_NOFOLLOW and resolving a symlink's target ourselves, inside the root. With `make`, missing components are
// created as mount points are: folders, and for the last one a folder or an empty file.
static int walk(int root, const char *path, int make, int dir) {
    char buf[2 * PATH_MAX], tmp[2 * PATH_MAX], comp[NAME_MAX + 1];
    int stack[MAX_DEPTH], depth = 0, links = 0, err = 0;
    if (strlen(path) >= sizeof buf)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    char *rest = buf;
    for (;;) {
        while (*rest == '/')
            rest++;
        if (*rest == '\0')
            break;
        char *end = strchrnul(rest, '/');
        size_t len = (size_t)(end - rest);
        if (len > NAME_MAX) {
            err = -ENAMETOOLONG;
            goto out;
        }
        memcpy(comp, rest, len);
        comp[len] = '\0';
        rest = end;
        int last = at_end(rest);
        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            if (depth > 0)
                close(stack[--depth]);
            continue;
        }
        int cur = depth > 0 ? stack[depth - 1] : root;
        int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && make) {
            int made = 0;
            if (last && !dir)
                made = create_file(cur, comp);
            else if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST)
                made = -errno;
            if (made < 0) {
                err = made;
                goto out;
            }
            // Opened again, without following: if a racer put a symlink there meanwhile, the loop resolves it.
            fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
            err = -errno;
            goto out;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            err = -errno;
            close(fd);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
            close(fd);
            if (n < 0) {
                err = -errno;
                goto out;
            }
            target[n] = '\0';
            if (++links > MAX_LINKS) {
                err = -ELOOP;
                goto out;
            }
            if (target[0] == '/')
                while (depth > 0)
                    close(stack[--depth]);
            int w = snprintf(tmp, sizeof tmp, "%s/%s", target, rest);
            if (w < 0 || (size_t)w >= sizeof tmp) {
                err = -ENAMETOOLONG;
                goto out;
            }
            memcpy(buf, tmp, (size_t)w + 1);
            rest = buf;
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) {
            close(fd);
            err = -ENOTDIR;
            goto out;
        }
        if (depth == MAX_DEPTH) {
            close(fd);
            err = -ENAMETOOLONG;
            goto out;
        }
        stack[depth++] = fd;
    }
    if (depth == 0) {
        int self = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return self >= 0 ? self : -errno;
    }
    int result = stack[--depth];
    while (depth > 0)
        close(stack[--depth]);
    return result;
out:
    while (depth > 0)
        close(stack[--depth]);
    return err;
}

int rootfs_open(int root, const char *path) {
    if (rootfs_resolver != ROOTFS_WALK) {
        int fd = openat2_in_root(root, path[0] != '\0' ? path : ".");
        if (fd != -ENOSYS || rootfs_resolver == ROOTFS_OPENAT2)
            return fd;
    }
    return walk(root, path, 0, 0);
}

int rootfs_make(int root, const char *path, int dir) {
    if (rootfs_resolver != ROOTFS_WALK) {
        int fd = openat2_in_root(root, path[0] != '\0' ? path : ".");
        if (fd >= 0 || (fd != -ENOENT && fd != -ENOSYS) || (fd == -ENOSYS && rootfs_resolver == ROOTFS_OPENAT2))
            return fd;
    }
    return walk(root, path, 1, dir);
}

int rootfs_is_dir(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? S_ISDIR(st.st_mode) : -errno;
}

static uint64_t mount_attrs(unsigned attrs) {
    return (attrs & ROOTFS_RDONLY ? ATTR_RDONLY : 0) | (attrs & ROOTFS_NOSUID ? ATTR_NOSUID : 0) |
           (attrs & ROOTFS_NODEV ? ATTR_NODEV : 0) | (attrs & ROOTFS_NOEXEC ? ATTR_NOEXEC : 0);
}

static int use_new_api(void) { return rootfs_mounter != ROOTFS_MOUNT_LEGACY; }

// Moves the detached tree `tree` onto `target`, with `attrs` set on every mount of it, and closes it. The tree is a
// clone of mounts in this (private) namespace, so it propagates nothing.
static int attach(int tree, uint64_t attrs, int target, const char **step) {
    int err = 0;
    struct mount_attr_v0 attr = {.attr_set = attrs};
    if (attrs != 0 && syscall(NR_mount_setattr, tree, "", AT_EMPTY_PATH | RECURSIVE, &attr, sizeof attr) != 0) {
        *step = "mount_setattr";
        err = -errno;
    } else if (syscall(NR_move_mount, tree, "", target, "", F_EMPTY | T_EMPTY) != 0) {
        *step = "move_mount";
        err = -errno;
    }
    close(tree);
    return err;
}

int rootfs_bind(const char *source, int source_fd, int recursive, unsigned attrs, int target, const char **step) {
    if (use_new_api()) {
        unsigned flags = TREE_CLONE | O_CLOEXEC | (recursive ? RECURSIVE : 0);
        long tree = source_fd >= 0 ? syscall(NR_open_tree, source_fd, "", flags | AT_EMPTY_PATH)
                                   : syscall(NR_open_tree, AT_FDCWD, source, flags);
        if (tree >= 0)
            return attach((int)tree, mount_attrs(attrs), target, step);
        if (errno != ENOSYS || rootfs_mounter == ROOTFS_MOUNT_NEW) {
            *step = "open_tree";
            return -errno;
        }
    }
    if (attrs != 0) {
        // A remount through /proc/self/fd/N would reach the mount point's own mount, not the new one, and
        // MS_REMOUNT never reaches an rbind's submounts: without mount_setattr, attributes cannot be enforced.
        *step = "read-only, nosuid, nodev or noexec binds need open_tree and mount_setattr (Linux 5.12)";
        return -EOPNOTSUPP;
    }
    char src[32], dst[32];
    snprintf(dst, sizeof dst, "/proc/self/fd/%d", target);
    if (source_fd >= 0) {
        snprintf(src, sizeof src, "/proc/self/fd/%d", source_fd);
        source = src;
    }
    if (mount(source, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) != 0) {
        *step = "mount";
        return -errno;
    }
    return 0;
}

int rootfs_make_readonly(int target, int recursive, const char **step) {
    if (use_new_api()) {
        long tree = syscall(NR_open_tree, target, "", TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | (recursive ? RECURSIVE : 0));
        if (tree >= 0)
            return attach((int)tree, ATTR_RDONLY, target, step);
        if (errno != ENOSYS || rootfs_mounter == ROOTFS_MOUNT_NEW) {
            *step = "open_tree";
            return -errno;
        }
    }
    *step = "read-only paths need open_tree and mount_setattr (Linux 5.12)";
    return -EOPNOTSUPP;
}

int rootfs_mask_dir(int target, const char **step) {
    if (use_new_api()) {
        long fs = syscall(NR_fsopen, "tmpfs", FS_CLOEXEC);
        if (fs >= 0) {
            int err = 0;
            long mnt = -1;
            if (syscall(NR_fsconfig, fs, FS_CMD_CREATE, NULL, NULL, 0) != 0) {
                *step = "fsconfig";
                err = -errno;
            } else if ((mnt = syscall(NR_fsmount, fs, FS_CLOEXEC, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)) < 0) {
                *step = "fsmount";
                err = -errno;
            } else if (syscall(NR_move_mount, mnt, "", target, "", F_EMPTY | T_EMPTY) != 0) {
                *step = "move_mount";
                err = -errno;
            }
            if (mnt >= 0)
                close((int)mnt);
            close((int)fs);
            return err;
        }
        if (errno != ENOSYS || rootfs_mounter == ROOTFS_MOUNT_NEW) {
            *step = "fsopen";
            return -errno;
        }
    }
    char dst[32];
    snprintf(dst, sizeof dst, "/proc/self/fd/%d", target);
    if (mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
        *step = "mount";
        return -errno;
    }
    return 0;
}
