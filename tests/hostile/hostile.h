/*
 * hostile.h - what every file of the hostile corpus shares.
 *
 * The corpus (every .c file in tests/hostile/, compiled into one shared library
 * by tests/tests/integration/hostile/corpus.rs) is one exported function
 * per attack class, `hostile_<class>`. Each makes its attack inside the
 * helper and, if the attack comes back at all instead of the helper being
 * stopped, returns the call's result or -errno: a test that sees a value
 * knows exactly what the sandbox let through.
 *
 * Arguments are chosen so that an attack that gets through does as little
 * harm as it can while still being observable from outside (a file in a
 * scratch directory, a victim process the test owns, a sentinel word in the
 * test process).
 */
#ifndef FFB_HOSTILE_CORPUS_H
#define FFB_HOSTILE_CORPUS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

/* -errno of a failed libc or syscall(2) call (-1 and errno), else its result. */
static inline int64_t hostile_ret(long r) { return r == -1 ? -(int64_t)errno : (int64_t)r; }

/* The helper's parent, or pid 1 where it is out of view (getppid() is 0 in a
 * pid namespace): a process that is not the helper either way. */
static inline pid_t hostile_parent(void) {
    pid_t parent = getppid();
    return parent > 0 ? parent : 1;
}

#endif
