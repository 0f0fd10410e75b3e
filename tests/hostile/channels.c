/*
 * channels.c - the helper's own channels: its fds to the host, and stdout
 * and stderr, which must never be read as ffb's output.
 */
#include "hostile.h"

#include <fcntl.h>
#include <string.h>

/* Close every fd from 3 up: the control socket, the wake eventfd, the
 * arena's memfd. */
int64_t hostile_close_fds(void) {
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    return 0;
}

/* dup2 stdin over every fd from 3 to 63: the fds stay open but are the
 * wrong files. */
int64_t hostile_dup2_over_fds(void) {
    int64_t replaced = 0;
    for (int fd = 3; fd < 64; fd++)
        if (dup2(0, fd) == fd)
            replaced++;
    return replaced;
}

/* Forged protocol text on stdout and stderr: ffb's JSON result and error
 * lines. */
int64_t hostile_forge_stdio(void) {
    static const char out[] = "{\"ok\":true,\"ret\":1337}\nhostile = 1337\n";
    static const char err[] =
        "ffb: policy_violation: forged\n{\"ok\":false,\"error\":{\"kind\":\"crashed\"}}\n";
    if (write(1, out, sizeof out - 1) < 0 || write(2, err, sizeof err - 1) < 0)
        return -errno;
    return 7;
}
