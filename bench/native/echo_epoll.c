/* echo_epoll.c -- the native reference echo server of the overlapio benchmark suite.
 *
 * Plain C, one thread, level-triggered epoll, non-blocking sockets, TCP_NODELAY.
 * It follows the same per-connection discipline as the completion-style Python servers
 * (recv into a per-connection buffer -> send all of it -> recv again), so it measures
 * what the kernel's loopback TCP path costs with (almost) nothing on top: the
 * machine's limit, not a straw man.
 *
 * Usage: echo_epoll [--host 127.0.0.1] [--port 0] [--bufsize 65536] [--proto tcp|udp]
 * With --proto udp it echoes each datagram to its sender (recvfrom -> sendto, one socket).
 * Prints "READY <port> <per-connection buffer bytes>" on stdout once listening.
 * Built by bench/native/build.py with the system C compiler (cc -O2).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t off, len;  /* unsent part of buf while waiting for EPOLLOUT */
    char buf[];       /* per-connection buffer, like the Python servers' bytearray */
};

static size_t bufsize = 65536;

static void raise_nofile(void) {
    /* 1,000 connections need > 1,000 fds in this process; use the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Send c->buf[off:len]; returns 0 when all out, 1 when it must wait, -1 on error. */
static int flush(struct conn *c) {
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            return -1;
        }
        c->off += (size_t)n;
    }
    return 0;
}

/* The UDP echo: one socket, each datagram straight back to its sender. */
static int udp_main(struct sockaddr_in sa) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    char *buf = malloc(bufsize);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    printf("READY %d %zu\n", ntohs(sa.sin_port), bufsize);
    fflush(stdout);
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
        for (;;) {
            struct sockaddr_in peer;
            socklen_t pl = sizeof peer;
            ssize_t n = recvfrom(s, buf, bufsize, 0, (struct sockaddr *)&peer, &pl);
            if (n < 0) break;  /* EAGAIN: drained */
            sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&peer, pl);
        }
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, udp = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bufsize")) bufsize = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--proto")) udp = !strcmp(argv[i + 1], "udp");
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (udp) {
        struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
        if (inet_pton(AF_INET, host, &ua.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
        return udp_main(ua);
    }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1024) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};  /* NULL = listener */
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("READY %d %zu\n", ntohs(sa.sin_port), bufsize);
    fflush(stdout);

    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        if (k < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;  /* EAGAIN, or EMFILE: try again on the next event */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc + bufsize);
                    if (!nc) { close(fd); continue; }
                    /* Touch the buffer so it is resident, as a Python bytearray is. */
                    memset(nc->buf, 0, bufsize);
                    nc->fd = fd; nc->off = nc->len = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (c->off < c->len) {  /* waiting for EPOLLOUT */
                int r = flush(c);
                if (r < 0) { drop(ep, c); continue; }
                if (r == 0) {
                    c->off = c->len = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                }
                continue;
            }
            ssize_t n = recv(c->fd, c->buf, bufsize, 0);
            if (n == 0) { drop(ep, c); continue; }
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                drop(ep, c);
                continue;
            }
            c->off = 0; c->len = (size_t)n;
            int r = flush(c);
            if (r < 0) { drop(ep, c); continue; }
            if (r == 1) {
                struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
            } else {
                c->off = c->len = 0;
            }
        }
    }
}
