/*
 * kernel.c - kernel surfaces no library needs, each a known exploit aid.
 * The arguments are valid but harmless where they could get through.
 */
#include "hostile.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>

int64_t hostile_io_uring_setup(void) {
    uint64_t params[16]; /* struct io_uring_params: 120 bytes, zero is valid */
    memset(params, 0, sizeof params);
    return hostile_ret(syscall(SYS_io_uring_setup, 8L, params));
}

int64_t hostile_userfaultfd(void) { return hostile_ret(syscall(SYS_userfaultfd, (long)O_CLOEXEC)); }

int64_t hostile_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 8;
    attr.max_entries = 1;
    return hostile_ret(syscall(SYS_bpf, (long)BPF_MAP_CREATE, &attr, (long)sizeof attr));
}

int64_t hostile_perf_event_open(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    return hostile_ret(syscall(SYS_perf_event_open, &attr, 0L, -1L, -1L, 0L));
}

int64_t hostile_keyctl(void) {
    return hostile_ret(syscall(SYS_keyctl, (long)KEYCTL_GET_KEYRING_ID,
                               (long)KEY_SPEC_SESSION_KEYRING, 0L));
}

int64_t hostile_add_key(void) {
    return hostile_ret(syscall(SYS_add_key, "user", "hostile", "owned", 5L,
                               (long)KEY_SPEC_PROCESS_KEYRING));
}

/* mount a tmpfs on a target that does not exist. */
int64_t hostile_mount(void) {
    return hostile_ret(syscall(SYS_mount, "none", "/nonexistent/hostile", "tmpfs", 0UL, NULL));
}

/* unshare(flags): a new user or mount namespace, to get capabilities back
 * inside it. */
int64_t hostile_unshare(int64_t flags) { return hostile_ret(unshare((int)flags)); }

/* setns(fd, 0): join whatever namespace fd names (an inherited fd, or one
 * opened under a policy that lets it open /proc/PID/ns). */
int64_t hostile_setns(int32_t fd) { return hostile_ret(syscall(SYS_setns, (long)fd, 0L)); }

int64_t hostile_chroot(const char *dir) { return hostile_ret(syscall(SYS_chroot, dir)); }

/* personality(ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC): no ASLR, and every
 * readable mapping executable. */
int64_t hostile_personality(uint64_t persona) {
    return hostile_ret(syscall(SYS_personality, (unsigned long)persona));
}

/* modify_ldt: write an LDT entry (a 16-bit segment, the classic espfix
 * surface). */
int64_t hostile_modify_ldt(void) {
    uint32_t entry[4] = {0, 0, 0xfffff, 0x1 /* seg_32bit */};
    return hostile_ret(syscall(SYS_modify_ldt, 1L, entry, (long)sizeof entry));
}

int64_t hostile_iopl(int32_t level) { return hostile_ret(syscall(SYS_iopl, (long)level)); }

/* TIOCSTI: push `text` into the input queue of the terminal on fd `fd`
 * (0-2 are inherited). */
int64_t hostile_tiocsti(int32_t fd, const char *text) {
    for (const char *c = text; *c; c++)
        if (ioctl(fd, TIOCSTI, c) != 0)
            return -errno;
    return 0;
}

/* unshare a user and mount namespace (capabilities inside it), then mount:
 * what a policy that allows unshare would open if nothing else held. */
int64_t hostile_unshare_then_mount(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return -errno;
    return hostile_mount();
}

/* personality(READ_IMPLIES_EXEC), then a mapping asked for as PROT_READ |
 * PROT_WRITE only, filled with a `ret` and called: returns 1 if the
 * writable page ran as code (the kernel added PROT_EXEC behind the
 * filter's back), or -errno. */
int64_t hostile_read_implies_exec(void) {
    if (syscall(SYS_personality, 0x0400000UL) == -1)
        return -errno;
    unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -errno;
    page[0] = 0xc3; /* ret */
    ((void (*)(void))page)();
    return 1;
}
