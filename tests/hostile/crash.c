/*
 * crash.c - crashes and hangs: the helper dies or stops answering in every
 * way a library can make it, during a call, while loading and while exiting.
 */
#include "hostile.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A well-behaved call, for "the next call works": x + 1. */
int64_t hostile_ping(int64_t x) { return x + 1; }

/* The helper's pid as it sees itself. */
int64_t hostile_getpid(void) { return getpid(); }

/* Store through NULL; the pointer is volatile so no compiler proves it. */
void hostile_segv(void) {
    volatile int *volatile p = NULL;
    *p = 42;
}

/* Unbounded recursion into the guard page. The frame is touched and used
 * after the call, so the recursion cannot become a loop. */
static volatile int bottom = -1; /* never reached: the depth only grows */
static int64_t deeper(volatile char *prev, int depth) {
    volatile char frame[4096];
    if (depth == bottom)
        return 0;
    frame[0] = prev ? prev[0] + 1 : 1;
    frame[sizeof frame - 1] = frame[0];
    return deeper(frame, depth + 1) + frame[sizeof frame - 1];
}
int64_t hostile_stack_overflow(void) { return deeper(NULL, 0); }

void hostile_abort(void) { abort(); }

/* exit(3): atexit handlers and destructors run, then the helper is gone. */
void hostile_exit(int32_t code) { exit(code); }

static void *exit_now(void *code) {
    _exit((int)(intptr_t)code);
    return NULL;
}
/* _exit(2) from a second thread while the calling thread waits for it. */
int64_t hostile_exit_from_thread(int32_t code) {
    pthread_t t;
    int r = pthread_create(&t, NULL, exit_now, (void *)(intptr_t)code);
    if (r != 0)
        return -r;
    pthread_join(t, NULL);
    return 0;
}

/* Spin without a syscall. */
void hostile_spin(void) {
    volatile int forever = 1;
    while (forever) {
    }
}

/* Stop itself: a hang that burns no CPU and that no handler can catch. */
void hostile_sigstop(void) { raise(SIGSTOP); }

/* Sleep for `ms`, past any short timeout. */
int64_t hostile_sleep_ms(int64_t ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
    return ms;
}

/* A constructor that crashes, when the host asks for it through the
 * helper's environment (FFB_HOSTILE_CTOR=segv): every other load of the
 * corpus runs the same constructor and it does nothing. */
__attribute__((constructor)) static void crash_in_constructor(void) {
    const char *mode = getenv("FFB_HOSTILE_CTOR");
    if (mode && strcmp(mode, "segv") == 0)
        hostile_segv();
}

static volatile int crash_at_unload;

/* Destructors of a dlopen()ed library run from exit(3). */
__attribute__((destructor)) static void crash_in_destructor(void) {
    if (crash_at_unload)
        hostile_segv();
}

/* Arm the destructor, then exit(code): the helper dies in its destructor. */
void hostile_destructor_crash(int32_t code) {
    crash_at_unload = 1;
    exit(code);
}

static void crash_handler(void) { hostile_segv(); }

/* An atexit handler that crashes, then exit(code). */
void hostile_atexit_crash(int32_t code) {
    atexit(crash_handler);
    exit(code);
}
