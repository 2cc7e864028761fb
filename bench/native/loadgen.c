/* loadgen.c -- the load generator of the overlapio benchmark suite.
 *
 * Written in C (one thread, level-triggered epoll, TCP_NODELAY) so that the client is
 * as cheap as the machine allows and the server under test is what gets measured.
 * It reports its own CPU time over the measured window: if that approaches one full
 * core, the client (not the server) was the limit, and the harness flags the run.
 *
 * Usage:
 *   loadgen --port P [--host 127.0.0.1] --mode pingpong|stream|churn|idle|udp
 *           [--conns N] [--size M] [--warmup S] [--duration S]
 *           [--window BYTES] [--stages N1,N2,...]
 *
 * Modes:
 *   pingpong  N connections; each sends M bytes, reads M bytes back fully, repeats.
 *             One "message" = one completed round trip; its latency is recorded.
 *   stream    N connections (normally 1); each keeps up to --window bytes in flight
 *             (pipelined writes of M-byte chunks) and reads the echo back. Measures
 *             echoed bytes per second; "messages" = echoed bytes / M.
 *   churn     N concurrent slots; each does connect, send M bytes, read M back, close,
 *             and starts again. One "message" = one full connection cycle.
 *   udp       pingpong over UDP: N connected datagram sockets ("peers"); each sends an
 *             M-byte datagram and waits for it to come back, repeats. A reply that
 *             has not come back after 1 s counts as an error and the peer sends again.
 *   idle      connect up to each stage's total, print "STAGE <n>", wait for a line on
 *             stdin, next stage; no traffic (used for per-connection memory).
 *
 * Protocol with the harness (stdout is a pipe): "START" when the warm-up ends (after
 * --warmup seconds AND once every connection has completed at least one exchange,
 * waiting at most 30 s more; the JSON reports warmup_s and cold_at_start), "END"
 * when the measured window ends (no new messages are started after it), then the
 * program waits for one line on stdin, closes its sockets, and prints one JSON line.
 * Waiting for the harness before closing keeps close/teardown work out of the
 * server CPU the harness samples at "END".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { M_PINGPONG, M_STREAM, M_CHURN, M_IDLE, M_UDP };
enum { S_DEAD, S_CONNECTING, S_ACTIVE, S_RETRY };

struct conn {
    int fd, state, out_armed, warmed;
    uint64_t sent, rcvd;  /* per message (pingpong/churn) or cumulative (stream) */
    uint64_t t0;
};

static int mode = M_PINGPONG, nconns = 1, epfd;
static size_t msize = 1024, window = 0;
static double warmup = 1.0, duration = 5.0;
static struct sockaddr_in addr;
static char *sendbuf, *scratch;
static size_t scratch_size;
static struct conn *conns;
static int phase = 0;  /* 0 warm-up, 1 measured, 2 done */
static uint64_t messages, bytes_measured, errors;
static int nalive;  /* established connections still alive (pingpong/stream) */
static int nwarm;   /* connections that completed at least one exchange */
/* The window starts only once every connection has completed an exchange (or this
 * many seconds after the nominal warm-up end), so that a server which is slow to
 * accept is not measured while it is still taking on connections. */
#define WARM_CAP_S 30.0

/* Log-linear latency histogram (HDR style): 64 sub-buckets per power of two of
 * nanoseconds, i.e. <= 1.6% relative error, fixed memory, O(1) per sample. */
#define HB (64 * 48)
static uint64_t hist[HB], hcount, hsum_ns, hmax_ns;

static inline int hidx(uint64_t v) {
    if (v < 64) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;
    int i = (shift + 1) * 64 + (int)((v >> shift) - 64);
    return i < HB ? i : HB - 1;
}
static inline double hval(int i) {
    if (i < 64) return i;
    int shift = i / 64 - 1;
    uint64_t m = (uint64_t)(i % 64) + 64;
    return (double)(m << shift) + (double)((1ull << shift) >> 1);
}
static void hadd(uint64_t ns) {
    hist[hidx(ns)]++;
    hcount++;
    hsum_ns += ns;
    if (ns > hmax_ns) hmax_ns = ns;
}
static double hpct(double p) {
    if (!hcount) return -1;
    uint64_t want = (uint64_t)(p * (double)hcount);
    if (want < 1) want = 1;
    uint64_t acc = 0;
    for (int i = 0; i < HB; i++) {
        acc += hist[i];
        if (acc >= want) return hval(i);
    }
    return (double)hmax_ns;
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_events(struct conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void mark_warm(struct conn *c) {
    if (!c->warmed) { c->warmed = 1; nwarm++; }
}

static void kill_conn(struct conn *c) {
    if (c->state == S_ACTIVE && mode != M_CHURN) {
        nalive--;
        if (c->warmed) nwarm--;
    }
    if (c->fd >= 0) close(c->fd);  /* close() also removes it from the epoll set */
    c->fd = -1;
    c->state = S_DEAD;
    errors++;
}

/* Start a non-blocking connect; the socket is registered for EPOLLOUT. */
static int start_connect(struct conn *c) {
    c->fd = socket(AF_INET, (mode == M_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { c->state = S_RETRY; errors++; return -1; }
    int one = 1;
    if (mode != M_UDP) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->sent = c->rcvd = 0;
    c->out_armed = 1;
    c->state = S_CONNECTING;
    int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    if (r < 0 && errno != EINPROGRESS) {
        close(c->fd); c->fd = -1; c->state = S_RETRY; errors++;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static int connect_done(struct conn *c) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) { kill_conn(c); return -1; }
    c->state = S_ACTIVE;
    return 0;
}

/* Connect all nconns sockets up front and wait until each one is established. */
static int connect_all(int from, int to) {
    int pending = 0;
    for (int i = from; i < to; i++)
        if (start_connect(&conns[i]) == 0) pending++;
    struct epoll_event evs[256];
    uint64_t deadline = now_ns() + 10000000000ull;
    while (pending > 0 && now_ns() < deadline) {
        int k = epoll_wait(epfd, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state != S_CONNECTING) continue;
            pending--;
            if (connect_done(c) == 0) { c->out_armed = 0; set_events(c, EPOLLIN); }
        }
    }
    int ok = 0;
    for (int i = from; i < to; i++) ok += conns[i].state == S_ACTIVE;
    return ok;
}

/* ---- ping-pong (also the exchange part of churn) ---- */
static void pp_send(struct conn *c) {
    while (c->sent < msize) {
        ssize_t n = send(c->fd, sendbuf + c->sent, msize - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!c->out_armed) { c->out_armed = 1; set_events(c, EPOLLIN | EPOLLOUT); }
                return;
            }
            kill_conn(c);
            return;
        }
        c->sent += (uint64_t)n;
    }
    if (c->out_armed) { c->out_armed = 0; set_events(c, EPOLLIN); }
}

static void pp_begin(struct conn *c, uint64_t t) {
    c->sent = c->rcvd = 0;
    c->t0 = t;
    pp_send(c);
}

/* Returns 1 when the message (msize bytes back) is complete. */
static int pp_read(struct conn *c) {
    ssize_t n = recv(c->fd, scratch, msize - c->rcvd, 0);
    if (n == 0) { kill_conn(c); return 0; }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) kill_conn(c);
        return 0;
    }
    if (mode == M_UDP) return 1;  /* one datagram is the whole reply */
    c->rcvd += (uint64_t)n;
    return c->rcvd >= msize;
}

static void record(uint64_t t, uint64_t t0, uint64_t nbytes) {
    if (phase != 1) return;
    messages++;
    bytes_measured += nbytes;
    hadd(t - t0);
}

/* ---- stream ---- */
static void st_pump(struct conn *c) {
    int want_out = 0;
    while (c->sent - c->rcvd < window) {
        size_t room = window - (size_t)(c->sent - c->rcvd);
        ssize_t n = send(c->fd, sendbuf, room < msize ? room : msize, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { want_out = 1; break; }
            kill_conn(c);
            return;
        }
        c->sent += (uint64_t)n;
    }
    if (want_out != c->out_armed) {
        c->out_armed = want_out;
        set_events(c, EPOLLIN | (want_out ? EPOLLOUT : 0));
    }
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static void wait_harness(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) { /* harness gone: just finish */ }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *stages = "1000";
    int port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--conns")) nconns = atoi(v);
        else if (!strcmp(k, "--size")) msize = (size_t)atol(v);
        else if (!strcmp(k, "--warmup")) warmup = atof(v);
        else if (!strcmp(k, "--duration")) duration = atof(v);
        else if (!strcmp(k, "--window")) window = (size_t)atol(v);
        else if (!strcmp(k, "--stages")) stages = v;
        else if (!strcmp(k, "--mode")) {
            if (!strcmp(v, "pingpong")) mode = M_PINGPONG;
            else if (!strcmp(v, "stream")) mode = M_STREAM;
            else if (!strcmp(v, "churn")) mode = M_CHURN;
            else if (!strcmp(v, "idle")) mode = M_IDLE;
            else if (!strcmp(v, "udp")) mode = M_UDP;
            else { fprintf(stderr, "unknown mode %s\n", v); return 2; }
        } else { fprintf(stderr, "unknown option %s\n", k); return 2; }
    }
    if (port <= 0 || nconns < 1 || msize < 1) {
        fprintf(stderr, "usage: loadgen --port P [--mode M] [--conns N] [--size B] ...\n");
        return 2;
    }
    if (!window) window = 16 * msize;
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    epfd = epoll_create1(EPOLL_CLOEXEC);

    if (mode == M_IDLE) {
        /* Stages are cumulative totals, e.g. "100,1100". */
        int total = 0;
        for (const char *p = stages; *p;) {
            int n = atoi(p);
            if (n > total) total = n;
            const char *q = strchr(p, ',');
            if (!q) break;
            p = q + 1;
        }
        conns = calloc((size_t)total, sizeof *conns);
        int have = 0, ok = 0;
        for (const char *p = stages; *p;) {
            int n = atoi(p);
            if (n > have) { ok += connect_all(have, n); have = n; }
            printf("STAGE %d\n", ok);
            fflush(stdout);
            wait_harness();
            const char *q = strchr(p, ',');
            if (!q) break;
            p = q + 1;
        }
        for (int i = 0; i < have; i++) if (conns[i].fd >= 0) close(conns[i].fd);
        printf("{\"mode\":\"idle\",\"conns\":%d,\"connected\":%d,\"errors\":%llu}\n", have, ok,
               (unsigned long long)errors);
        return 0;
    }

    sendbuf = malloc(msize);
    memset(sendbuf, 'x', msize);
    scratch_size = msize > 65536 ? msize : 65536;
    scratch = malloc(scratch_size);
    conns = calloc((size_t)nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) conns[i].fd = -1;

    int connected = nconns;
    if (mode != M_CHURN) {
        connected = connect_all(0, nconns);
        if (connected == 0) {
            printf("{\"error\":\"could not connect\",\"errors\":%llu}\n", (unsigned long long)errors);
            return 1;
        }
    }

    nalive = connected;
    if (mode == M_CHURN) nwarm = nconns;  /* no lasting connections to wait for */
    uint64_t t_begin = now_ns();
    uint64_t t_start = t_begin + (uint64_t)(warmup * 1e9);
    uint64_t t_cap = t_start + (uint64_t)(WARM_CAP_S * 1e9);
    uint64_t t_end = 0;
    int cold_at_start = 0;
    uint64_t m_t0 = 0, m_t1 = 0;
    struct rusage ru0, ru1;
    memset(&ru0, 0, sizeof ru0);
    memset(&ru1, 0, sizeof ru1);

    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (mode == M_CHURN) { c->t0 = now_ns(); start_connect(c); }
        else if (c->state == S_ACTIVE) {
            if (mode == M_PINGPONG || mode == M_UDP) pp_begin(c, now_ns());
            else { c->out_armed = 0; st_pump(c); }
        }
    }
    if (phase == 0 && warmup <= 0) { /* handled in loop */ }

    struct epoll_event evs[1024];
    uint64_t errors_before = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (phase == 0 && now >= t_start && (nwarm >= nalive || now >= t_cap)) {
            phase = 1;
            cold_at_start = mode == M_CHURN ? 0 : nalive - nwarm;
            t_end = now + (uint64_t)(duration * 1e9);
            getrusage(RUSAGE_SELF, &ru0);
            errors_before = errors;
            m_t0 = now_ns();
            printf("START\n");
            fflush(stdout);
        }
        if (phase == 1 && now >= t_end) {
            m_t1 = now_ns();
            getrusage(RUSAGE_SELF, &ru1);
            phase = 2;
            printf("END\n");
            fflush(stdout);
            break;
        }
        int timeout;
        if (phase == 0 && now >= t_start) timeout = 5;  /* waiting for cold connections */
        else timeout = (int)(((phase == 0 ? t_start : t_end) - now) / 1000000ull) + 1;
        if (mode == M_CHURN) {
            int retry = 0;
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == S_RETRY) { conns[i].t0 = now; start_connect(&conns[i]); retry = 1; }
            if (retry && timeout > 1) timeout = 1;
        }
        if (mode == M_UDP) {  /* a datagram (or its reply) lost: count it, send again */
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == S_ACTIVE && now - conns[i].t0 > 1000000000ull) { errors++; pp_begin(&conns[i], now); }
            if (timeout > 100) timeout = 100;
        }
        int k = epoll_wait(epfd, evs, 1024, timeout);
        if (k < 0 && errno != EINTR) { perror("epoll_wait"); break; }
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (c->state == S_DEAD || c->fd < 0) continue;
            if (mode == M_PINGPONG || mode == M_UDP) {
                if (e & EPOLLOUT) pp_send(c);
                if (c->state == S_ACTIVE && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && pp_read(c)) {
                    uint64_t t = now_ns();
                    mark_warm(c);
                    record(t, c->t0, msize);
                    pp_begin(c, t);
                }
            } else if (mode == M_STREAM) {
                if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    ssize_t n = recv(c->fd, scratch, scratch_size, 0);
                    if (n == 0) { kill_conn(c); continue; }
                    if (n < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) kill_conn(c);
                    } else {
                        c->rcvd += (uint64_t)n;
                        mark_warm(c);
                        if (phase == 1) bytes_measured += (uint64_t)n;
                    }
                }
                if (c->state == S_ACTIVE) st_pump(c);
            } else { /* churn */
                if (c->state == S_CONNECTING) {
                    if (connect_done(c) < 0) { c->state = S_RETRY; continue; }
                    c->out_armed = 1;  /* registered for EPOLLOUT; pp_send fixes it */
                    pp_send(c);
                    if (c->state == S_DEAD) c->state = S_RETRY;
                    continue;
                }
                if (e & EPOLLOUT) pp_send(c);
                if (c->state == S_ACTIVE && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && pp_read(c)) {
                    uint64_t t = now_ns();
                    close(c->fd);
                    c->fd = -1;
                    record(t, c->t0, msize);
                    c->t0 = t;
                    start_connect(c);
                }
                if (c->state == S_DEAD) c->state = S_RETRY;
            }
        }
        if (mode != M_CHURN && nalive <= 0) {
            fprintf(stderr, "loadgen: all connections lost\n");
            break;
        }
    }
    if (phase != 2) {  /* aborted: still close the protocol */
        m_t1 = now_ns();
        getrusage(RUSAGE_SELF, &ru1);
        if (phase == 0) { printf("START\n"); m_t0 = m_t1; ru0 = ru1; }
        printf("END\n");
        fflush(stdout);
    }
    wait_harness();
    int alive = 0;
    for (int i = 0; i < nconns; i++) {
        alive += conns[i].state == S_ACTIVE || conns[i].state == S_CONNECTING;
        if (conns[i].fd >= 0) close(conns[i].fd);
    }

    double secs = (double)(m_t1 - m_t0) / 1e9;
    double warm_s = (double)(m_t0 - t_begin) / 1e9;
    const char *mname = mode == M_PINGPONG ? "pingpong" : mode == M_STREAM ? "stream" :
                        mode == M_UDP ? "udp" : "churn";
    if (mode == M_STREAM) messages = bytes_measured / msize;
    printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"connected\":%d,\"alive\":%d,"
           "\"seconds\":%.6f,\"messages\":%llu,\"bytes\":%llu,"
           "\"msgs_per_s\":%.3f,\"mb_per_s\":%.4f,",
           mname, nconns, msize, connected, alive, secs, (unsigned long long)messages,
           (unsigned long long)bytes_measured, secs > 0 ? (double)messages / secs : 0.0,
           secs > 0 ? (double)bytes_measured / secs / 1e6 : 0.0);
    if (hcount)
        printf("\"latency_samples\":%llu,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,"
               "\"p999_us\":%.3f,\"max_us\":%.3f,\"mean_us\":%.3f,",
               (unsigned long long)hcount, hpct(0.50) / 1e3, hpct(0.90) / 1e3, hpct(0.99) / 1e3,
               hpct(0.999) / 1e3, (double)hmax_ns / 1e3, (double)hsum_ns / (double)hcount / 1e3);
    else
        printf("\"latency_samples\":0,\"p50_us\":null,\"p90_us\":null,\"p99_us\":null,"
               "\"p999_us\":null,\"max_us\":null,\"mean_us\":null,");
    printf("\"warmup_s\":%.4f,\"cold_at_start\":%d,", warm_s, cold_at_start);
    printf("\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"errors\":%llu,\"errors_in_window\":%llu}\n",
           tv(ru1.ru_utime) - tv(ru0.ru_utime), tv(ru1.ru_stime) - tv(ru0.ru_stime),
           (unsigned long long)errors, (unsigned long long)(errors - errors_before));
    return 0;
}
