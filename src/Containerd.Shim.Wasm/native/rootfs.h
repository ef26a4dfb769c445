// rootfs.h: finding and mounting things inside a container's rootfs by descriptor (rootfs.c). Used by the instance
// process's constructor (instance_setup.c) before .NET starts, and by tests/native/rootfs_test.c.
#ifndef WASM_ROOTFS_H
#define WASM_ROOTFS_H

#include <stddef.h>

// How paths are resolved inside a root: the kernel's openat2(RESOLVE_IN_ROOT), or our own component walk. AUTO uses
// openat2 and falls back to the walk where the kernel lacks it (ENOSYS).
enum rootfs_resolver { ROOTFS_AUTO, ROOTFS_OPENAT2, ROOTFS_WALK };

// Which mount calls are used: the descriptor-based ones (open_tree, move_mount, mount_setattr, fsopen), or mount(2)
// on /proc/self/fd/N. AUTO uses the new ones and falls back where the kernel lacks them (ENOSYS).
enum rootfs_mounter { ROOTFS_MOUNT_AUTO, ROOTFS_MOUNT_NEW, ROOTFS_MOUNT_LEGACY };

extern enum rootfs_resolver rootfs_resolver;
extern enum rootfs_mounter rootfs_mounter;

// Opens (O_PATH) what `path` leads to inside `root`, as the container sees it: symlinks are followed inside the root
// (an absolute target means the root), ".." at the root stays there, magic links are refused. Returns the
// descriptor, or -errno.
int rootfs_open(int root, const char *path);

// As rootfs_open, but creates what is missing on the way, as a mount point is made: folders for the components,
// and for the last one a folder (dir != 0) or an empty file. A dangling symlink on the way is followed and its
// target created, inside the root. Returns the descriptor, or -errno.
int rootfs_make(int root, const char *path, int dir);

// Mount attributes of a bind (bits of MOUNT_ATTR_*, see rootfs.c).
#define ROOTFS_RDONLY 0x1
#define ROOTFS_NOSUID 0x2
#define ROOTFS_NODEV 0x4
#define ROOTFS_NOEXEC 0x8

// Binds the host path `source`, or the descriptor `source_fd` when it is not -1, (recursively if `recursive`) onto
// the O_PATH descriptor `target`, with `attrs` applied to every mount of the bound tree (so read-only covers
// submounts too). Returns 0 or -errno; on failure `step` says which call failed. Without the descriptor-based mount
// calls (before Linux 5.2/5.12) a bind with attributes is refused rather than made writable.
int rootfs_bind(const char *source, int source_fd, int recursive, unsigned attrs, int target, const char **step);

// Binds what the O_PATH descriptor `target` names onto itself, read-only (with every mount below it when
// `recursive`), as readonlyPaths asks. Returns 0 or -errno.
int rootfs_make_readonly(int target, int recursive, const char **step);

// Mounts an empty read-only tmpfs on the folder `target`. Returns 0 or -errno.
int rootfs_mask_dir(int target, const char **step);

// Whether the file behind `fd` is a directory: 1, 0, or -errno.
int rootfs_is_dir(int fd);

#endif
