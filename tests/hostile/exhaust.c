/*
 * exhaust.c - exhaustion: memory, fds, threads, mappings, a signal storm on
 * itself, and timers armed to fire after the call has returned.
 */
#include "hostile.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

/* malloc and touch 1 MiB blocks until malloc fails or `limit` MiB: returns
 * the MiB it got. */
int64_t hostile_eat_memory(int64_t limit) {
    int64_t got = 0;
    for (; got < limit; got++) {
        char *p = malloc(1 << 20);
        if (!p)
            break;
        memset(p, 1, 1 << 20);
    }
    return got;
}

/* dup(0) until it fails: returns -errno of the failure and leaves the fds
 * open. */
int64_t hostile_eat_fds(void) {
    for (int i = 0; i < 100000; i++)
        if (dup(0) < 0)
            return -errno;
    return 0;
}

static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

/* Wait forever on a condition nobody signals (a futex wait). */
static void *park(void *arg) {
    (void)arg;
    pthread_mutex_lock(&parked_lock);
    for (;;)
        pthread_cond_wait(&never, &parked_lock);
    return NULL;
}

/* Start parked threads until pthread_create fails or `limit`: returns how
 * many started. */
int64_t hostile_thread_bomb(int64_t limit) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    int64_t n = 0;
    for (; n < limit; n++) {
        pthread_t t;
        if (pthread_create(&t, &a, park, NULL) != 0)
            break;
    }
    return n;
}

/* Reserve 1 GiB mappings until mmap fails: returns how many it got. */
int64_t hostile_eat_mappings(void) {
    int64_t n = 0;
    while (n < 1 << 20 &&
           mmap(NULL, 1UL << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) !=
               MAP_FAILED)
        n++;
    return n;
}

static volatile sig_atomic_t storms;
static void count_signal(int sig) {
    (void)sig;
    storms++;
}

/* Queue `n` SIGUSR1s to itself with a handler: a storm the pending-signal
 * limit bounds. Returns how many were delivered. */
int64_t hostile_signal_storm(int64_t n) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal;
    sigaction(SIGUSR1, &sa, NULL);
    storms = 0;
    for (int64_t i = 0; i < n; i++)
        if (kill(getpid(), SIGUSR1) != 0)
            return -errno;
    return storms;
}

/* A repeating ITIMER_REAL, first firing after `ms`, with SIGALRM at its
 * default action (terminate): it fires after the call has returned. */
int64_t hostile_timers_after_return(int64_t ms) {
    signal(SIGALRM, SIG_DFL);
    struct itimerval it = {{0, 50000}, {ms / 1000, (ms % 1000) * 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        return -errno;
    return 0;
}

/* alarm(secs) at its default action: SIGALRM ends the helper after the call. */
int64_t hostile_alarm(uint32_t secs) { return (int64_t)alarm(secs); }
