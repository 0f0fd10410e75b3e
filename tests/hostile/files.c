/*
 * files.c - files outside the policy: opens, changes to names and metadata,
 * and the link tricks that try to carry a Landlock grant to another file.
 * The test names the paths (a scratch directory it owns) and checks them
 * with its own eyes afterwards.
 */
#include "hostile.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>

/* Closes fd and returns r, or -errno of the call that gave r. */
static int64_t close_after(int fd, ssize_t r) {
    int err = errno;
    close(fd);
    return r < 0 ? -err : r;
}

/* open(2) with `flags` (0600 if it creates); on success writes "owned" when
 * the flags allow writing, and returns 0. */
static int64_t use_opened(int fd, int32_t flags) {
    if (fd < 0)
        return -errno;
    if ((flags & O_ACCMODE) == O_RDONLY)
        return close_after(fd, 0);
    ssize_t w = write(fd, "owned", 5);
    return close_after(fd, w < 0 ? w : 0);
}

int64_t hostile_open(const char *path, int32_t flags) {
    return use_opened((int)syscall(SYS_open, path, flags | O_CLOEXEC, 0600), flags);
}

int64_t hostile_openat(const char *path, int32_t flags) {
    return use_opened((int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0600), flags);
}

int64_t hostile_openat2(const char *path, int32_t flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? 0600 : 0;
    return use_opened((int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how), flags);
}

int64_t hostile_creat(const char *path) {
    return use_opened((int)syscall(SYS_creat, path, 0600), O_WRONLY);
}

int64_t hostile_unlink(const char *path) { return hostile_ret(unlink(path)); }

int64_t hostile_rename(const char *from, const char *to) { return hostile_ret(rename(from, to)); }

int64_t hostile_truncate(const char *path, int64_t len) {
    return hostile_ret(truncate(path, (off_t)len));
}

int64_t hostile_chmod(const char *path, uint32_t mode) {
    return hostile_ret(chmod(path, (mode_t)mode));
}

/* utimes to 1 January 2000 (explicit times, which need ownership). */
int64_t hostile_utimes(const char *path) {
    struct timeval tv[2] = {{946684800, 0}, {946684800, 0}};
    return hostile_ret(utimes(path, tv));
}

int64_t hostile_setxattr(const char *path) {
    return hostile_ret(setxattr(path, "user.hostile", "owned", 5, 0));
}

/* Make `link` (in a writable directory) a symlink to `target` (outside
 * every grant), then open it for writing through the link and write. */
int64_t hostile_symlink_escape(const char *target, const char *link) {
    if (symlink(target, link) != 0)
        return -errno;
    int fd = open(link, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return close_after(fd, write(fd, "owned", 5));
}

/* Hard-link `target` (outside every grant) into `link` (in a writable
 * directory), then write through the new name. */
int64_t hostile_hardlink_escape(const char *target, const char *name) {
    if (link(target, name) != 0)
        return -errno;
    int fd = open(name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    return close_after(fd, write(fd, "owned", 5));
}

/* name_to_handle_at on `path` (metadata only), then open_by_handle_at
 * through a directory fd on the same filesystem (`mount_dir`), and read up
 * to n bytes into `out`. */
int64_t hostile_open_by_handle(const char *path, const char *mount_dir, uint8_t *out, size_t n) {
    struct {
        struct file_handle fh;
        unsigned char bytes[MAX_HANDLE_SZ];
    } h;
    int mount_id;
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) != 0)
        return -errno;
    int dir = open(mount_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    int fd = open_by_handle_at(dir, &h.fh, O_RDONLY | O_CLOEXEC);
    int err = errno;
    close(dir);
    if (fd < 0)
        return -err;
    return close_after(fd, read(fd, out, n));
}
