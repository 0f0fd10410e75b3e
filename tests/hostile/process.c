/*
 * process.c - new processes: every way to start one, each of which would
 * leave the helper's supervision and limits. A child that does start names
 * itself "ffb-hostile-kid" and waits forever, for the test to find it from
 * outside; the parent returns its pid.
 */
#include "hostile.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* What a child does if one is ever started. */
static void be_found(void) {
    prctl(PR_SET_NAME, "ffb-hostile-kid", 0UL, 0UL, 0UL);
    for (;;)
        pause();
}

static char *const true_argv[] = {(char *)"/bin/true", NULL};
static char *const empty_envp[] = {NULL};

int64_t hostile_execve(void) {
    execve("/bin/true", true_argv, empty_envp);
    return -errno;
}

int64_t hostile_execveat(void) {
    return hostile_ret(syscall(SYS_execveat, AT_FDCWD, "/bin/true", true_argv, empty_envp, 0));
}

int64_t hostile_fork(void) {
    long r = syscall(SYS_fork);
    if (r == 0)
        be_found();
    return hostile_ret(r);
}

int64_t hostile_vfork(void) {
    long r = syscall(SYS_vfork);
    if (r == 0)
        be_found();
    return hostile_ret(r);
}

static int child_waits(void *arg) {
    (void)arg;
    be_found();
    return 0;
}

static char clone_stack[64 * 1024] __attribute__((aligned(16)));

/* clone(2) of a process (no CLONE_THREAD) with `flags` beside SIGCHLD:
 * 0, CLONE_VM, CLONE_PARENT. */
int64_t hostile_clone_process(uint64_t flags) {
    return hostile_ret(clone(child_waits, clone_stack + sizeof clone_stack,
                             (int)flags | SIGCHLD, NULL));
}

/* clone3(2) of a process. The kernel copies the arguments, so the filter
 * cannot read its flags: ffb answers ENOSYS. */
int64_t hostile_clone3(void) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0)
        be_found();
    return hostile_ret(r);
}

/* A program that never touched the disk: a script in a memfd, run with
 * fexecve (execveat with AT_EMPTY_PATH). */
int64_t hostile_memfd_fexecve(void) {
    int fd = (int)syscall(SYS_memfd_create, "hostile", 0U);
    if (fd < 0)
        return -errno;
    static const char script[] = "#!/bin/sh\nexit 0\n";
    if (write(fd, script, sizeof script - 1) != (ssize_t)(sizeof script - 1))
        return -errno;
    fexecve(fd, true_argv, empty_envp);
    return -errno;
}
