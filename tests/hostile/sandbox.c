/*
 * sandbox.c - tampering with its own sandbox: prctl tricks, a second
 * seccomp filter, a SIGSYS handler to hide a violation, leaving its process
 * group, raising its limits, and scheduling changes meant to starve the host.
 */
#include "hostile.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

int64_t hostile_prctl(int32_t option, uint64_t arg2) {
    return hostile_ret(prctl(option, (unsigned long)arg2, 0UL, 0UL, 0UL));
}

/* A second filter that allows everything: stacked, it would change nothing
 * the first one decides, but SECCOMP_RET_ERRNO from it could make a floor
 * syscall fail quietly instead of being reported. */
static struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
static struct sock_fprog allow_all_prog = {1, allow_all};

int64_t hostile_seccomp_filter(void) {
    return hostile_ret(syscall(SYS_seccomp, (long)SECCOMP_SET_MODE_FILTER, 0L, &allow_all_prog));
}

static void swallow(int sig) { (void)sig; }

/* Catch and ignore SIGSYS, then make a forbidden call: a filter that
 * answered with SECCOMP_RET_TRAP would be hidden. */
int64_t hostile_sigsys_hide(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = swallow;
    sigaction(SIGSYS, &sa, NULL);
    return hostile_ret(socket(AF_INET, SOCK_STREAM, 0));
}

/* Leave the process group (setsid or setpgid), then hang: the host must
 * still be able to kill it. */
int64_t hostile_setsid_then_hang(void) {
    long r = setsid();
    if (r < 0)
        r = setpgid(0, 0) == 0 ? 0 : -1;
    volatile int forever = 1;
    while (forever) {
    }
    return hostile_ret(r);
}

/* Raise every soft limit to its hard limit, then try to raise the hard
 * limit of RLIMIT_NOFILE and RLIMIT_AS. Returns the first error. */
int64_t hostile_raise_rlimits(void) {
    struct rlimit l;
    int resources[] = {RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_NPROC, RLIMIT_CPU};
    for (size_t i = 0; i < sizeof resources / sizeof *resources; i++) {
        if (getrlimit(resources[i], &l) != 0)
            return -errno;
        l.rlim_max = RLIM_INFINITY;
        l.rlim_cur = RLIM_INFINITY;
        if (setrlimit(resources[i], &l) != 0)
            return -errno;
    }
    return 0;
}

/* SCHED_FIFO at top priority on `pid` (0: itself): a spinning real-time
 * helper would starve the host on its CPU. */
int64_t hostile_sched_fifo(int64_t pid) {
    struct sched_param p = {.sched_priority = 99};
    return hostile_ret(sched_setscheduler((pid_t)pid, SCHED_FIFO, &p));
}

/* setpriority(PRIO_PROCESS, pid, nice): renice the host down. */
int64_t hostile_renice(int64_t pid, int32_t nice) {
    return hostile_ret(setpriority(PRIO_PROCESS, (id_t)pid, nice));
}
