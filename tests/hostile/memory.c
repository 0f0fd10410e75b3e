/*
 * memory.c - memory tricks: scribbling over the shared arena (around the
 * call's own argument, anywhere in it, and from a thread while the host
 * decodes the answer), writing past an out[N], bad strings, RWX memory and
 * forged handles.
 *
 * The arena offsets come from the test (the contract's layout): `p` is the
 * call's first buffer, `back` how far before it the arena starts.
 */
#include "hostile.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void scribble(uint8_t *from, size_t len, uint64_t seed) {
    uint64_t s = seed | 1;
    for (size_t i = 0; i < len; i++)
        from[i] = (uint8_t)next_random(&s);
}

/* Garbage over `around` bytes on each side of its own argument, which
 * reaches the control block before it and the next buffers after it. */
int64_t hostile_scribble_around(uint8_t *p, uint64_t around, uint64_t seed) {
    scribble(p - around, (size_t)(2 * around + 64), seed);
    return 0;
}

/* Garbage over the whole arena: `back` bytes before `p` to `len` past the
 * arena's start. */
int64_t hostile_scribble_arena(uint8_t *p, uint64_t back, uint64_t len, uint64_t seed) {
    scribble(p - back, (size_t)len, seed);
    return 0;
}

struct flipper {
    volatile uint32_t *words; /* the helper line: resp_seq, status, message_len */
    volatile uint64_t *ret;
    long ms;
};

static void *flip(void *arg) {
    struct flipper *f = arg;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    do {
        for (int i = 0; i < 1000; i++) {
            uint64_t r = next_random(&s);
            f->words[r % 3] = (uint32_t)(r >> 32);
            *f->ret = r;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < f->ms);
    return NULL;
}

/* Start a thread that flips the answer's words (resp_seq, status,
 * message_len, ret) for `ms` milliseconds, and return at once: the thread
 * keeps writing while the host decodes the answer and after the call has
 * returned. `back` is the distance from `p` to the helper line. */
int64_t hostile_flip_answer(uint8_t *p, uint64_t back, int64_t ms) {
    static struct flipper f;
    f.words = (volatile uint32_t *)(p - back);
    f.ret = (volatile uint64_t *)(p - back + 16);
    f.ms = (long)ms;
    pthread_t t;
    if (pthread_create(&t, NULL, flip, &f) != 0)
        return -1;
    pthread_detach(t);
    return 42;
}

/* Fill `n` bytes from `out` though it was declared shorter. */
int64_t hostile_write_past_out(uint8_t *out, uint64_t n) {
    memset(out, 0x5a, (size_t)n);
    return (int64_t)n;
}

/* ---- returned strings ---- */

const char *hostile_cstr_invalid(void) { return (const char *)16; }

/* 16 bytes of 'U' that end at a PROT_NONE page: no terminator can be read. */
const char *hostile_cstr_unterminated(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)(2 * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    memset(m, 'U', (size_t)page);
    mprotect(m + page, (size_t)page, PROT_NONE);
    return m + page - 16;
}

/* A terminated string of `bytes` bytes of 'x'. */
const char *hostile_cstr_huge(uint64_t bytes) {
    char *s = malloc((size_t)bytes + 1);
    if (!s)
        return NULL;
    memset(s, 'x', (size_t)bytes);
    s[bytes] = 0;
    return s;
}

/* Map memory writable and executable at once (or make a writable mapping
 * executable): the start of code injection. Returns 0 if it got it. */
int64_t hostile_mprotect_rwx(void) {
    long page = sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    return hostile_ret(mprotect(m, (size_t)page, PROT_READ | PROT_WRITE | PROT_EXEC));
}

/* A "handle" that points anywhere it likes: a forged pointer. */
void *hostile_forged_handle(uint64_t raw) { return (void *)(uintptr_t)raw; }

/* Reads the first byte behind a handle: if the host ever passed a raw
 * pointer it did not issue, this would dereference it. */
int64_t hostile_handle_peek(const uint8_t *h) { return h ? (int64_t)h[0] : -1; }
