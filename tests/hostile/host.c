/*
 * host.c - attacks on the host and on other processes: signals, memory and
 * snooping. The test passes the pids and addresses it wants hit (its own
 * pid, a victim's, the address of a sentinel in its own memory) and checks
 * them from outside.
 */
#include "hostile.h"

#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* ---- signals ---- */

/* SIGKILL to the helper's parent (the fork server, or the pid namespace's
 * init). */
int64_t hostile_kill_parent(void) { return hostile_ret(kill(hostile_parent(), SIGKILL)); }

/* kill(pid, sig) with the test's target: a victim, -its group, or -1. */
int64_t hostile_kill(int64_t pid, int32_t sig) { return hostile_ret(kill((pid_t)pid, sig)); }

int64_t hostile_tgkill(int64_t tgid, int32_t sig) {
    return hostile_ret(syscall(SYS_tgkill, (long)tgid, (long)tgid, (long)sig));
}

int64_t hostile_tkill(int64_t tid, int32_t sig) {
    return hostile_ret(syscall(SYS_tkill, (long)tid, (long)sig));
}

/* pidfd_send_signal through a pidfd for `pid`, or, where the pid is out of
 * view, for the parent. */
int64_t hostile_pidfd_send_signal(int64_t pid, int32_t sig) {
    long fd = syscall(SYS_pidfd_open, (long)pid, 0L);
    if (fd < 0)
        fd = syscall(SYS_pidfd_open, (long)hostile_parent(), 0L);
    return hostile_ret(syscall(SYS_pidfd_send_signal, fd, (long)sig, NULL, 0L));
}

/* rt_sigqueueinfo: a signal with a forged siginfo (si_code SI_QUEUE, a
 * made-up sender). */
int64_t hostile_rt_sigqueueinfo(int64_t pid, int32_t sig) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = SI_QUEUE;
    info.si_pid = 1;
    return hostile_ret(syscall(SYS_rt_sigqueueinfo, (long)pid, (long)sig, &info));
}

/* ---- memory ---- */

int64_t hostile_ptrace_attach_parent(void) {
    return hostile_ret(syscall(SYS_ptrace, (long)PTRACE_ATTACH, (long)hostile_parent(), 0L, 0L));
}

int64_t hostile_ptrace_traceme(void) {
    return hostile_ret(syscall(SYS_ptrace, (long)PTRACE_TRACEME, 0L, 0L, 0L));
}

/* process_vm_writev of 8 bytes of 0x41 to `addr` in `pid`. */
int64_t hostile_process_vm_writev(int64_t pid, uint64_t addr) {
    static char payload[8] = "AAAAAAAA";
    struct iovec local = {payload, sizeof payload};
    struct iovec remote = {(void *)(uintptr_t)addr, sizeof payload};
    return hostile_ret(syscall(SYS_process_vm_writev, (long)pid, &local, 1L, &remote, 1L, 0L));
}

/* Open /proc/PID/mem for writing and write 8 bytes of 0x42 at `addr`. */
int64_t hostile_write_proc_mem(int64_t pid, uint64_t addr) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/mem", (long)pid);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t w = pwrite(fd, "BBBBBBBB", 8, (off_t)addr);
    int err = errno;
    close(fd);
    return w < 0 ? -err : w;
}

/* pidfd_getfd: take fd `fd` of `pid` (or of the parent). */
int64_t hostile_pidfd_getfd(int64_t pid, int32_t fd) {
    long pidfd = syscall(SYS_pidfd_open, (long)pid, 0L);
    if (pidfd < 0)
        pidfd = syscall(SYS_pidfd_open, (long)hostile_parent(), 0L);
    return hostile_ret(syscall(SYS_pidfd_getfd, pidfd, (long)fd, 0L));
}

/* ---- snooping ---- */

/* Read up to n bytes of `path` (e.g. /proc/PID/environ) into `out`. */
int64_t hostile_read_file(const char *path, uint8_t *out, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = read(fd, out, n);
    int err = errno;
    close(fd);
    return r < 0 ? -err : r;
}

extern char **environ;

/* The helper's own environment, NUL-separated, into `out` (no syscall):
 * what a library can learn without asking the kernel. Returns the bytes
 * written. */
int64_t hostile_own_environ(uint8_t *out, size_t n) {
    size_t at = 0;
    for (char **e = environ; e && *e; e++) {
        size_t len = strlen(*e) + 1;
        if (at + len > n)
            break;
        memcpy(out + at, *e, len);
        at += len;
    }
    return (int64_t)at;
}
