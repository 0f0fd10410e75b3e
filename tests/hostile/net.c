/*
 * net.c - the network: TCP out and in, netlink, unix sockets by path and by
 * abstract name, and passing an fd out with SCM_RIGHTS. The test holds the
 * other end (a listener that must never accept, a unix socket that must
 * never receive) and watches it.
 */
#include "hostile.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static int64_t fail_closing(int fd) {
    int err = errno;
    close(fd);
    return -err;
}

int64_t hostile_tcp_connect(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return fail_closing(fd);
    close(fd);
    return 0;
}

/* bind 127.0.0.1:port and listen: a server inside the helper. */
int64_t hostile_tcp_listen(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0)
        return fail_closing(fd);
    return fd;
}

/* A route netlink socket, then a dump request: the kernel's view of the
 * machine's network. */
int64_t hostile_netlink(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return fail_closing(fd);
    close(fd);
    return 0;
}

/* A unix stream socket connected to `name`: a path, or with `abstract` the
 * abstract name. */
static int unix_connect(const char *name, int32_t abstract) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    if (len + 2 > sizeof a.sun_path) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(a.sun_path + (abstract ? 1 : 0), name, len);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
    if (connect(fd, (struct sockaddr *)&a, alen) != 0)
        return (int)fail_closing(fd);
    return fd;
}

int64_t hostile_unix_connect(const char *name, int32_t abstract) {
    int fd = unix_connect(name, abstract);
    if (fd < 0)
        return fd;
    ssize_t w = write(fd, "owned", 5);
    close(fd);
    return w < 0 ? -errno : 0;
}

/* Connect to the unix socket `path` and send it fd 0 with SCM_RIGHTS. */
int64_t hostile_scm_rights(const char *path) {
    int fd = unix_connect(path, 0);
    if (fd < 0)
        return fd;
    int passed = 0;
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                         .msg_controllen = sizeof control.space};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    ssize_t r = sendmsg(fd, &msg, 0);
    int err = errno;
    close(fd);
    return r < 0 ? -err : 0;
}
