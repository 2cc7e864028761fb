"""The C half of the io_uring backend, built by build_ffi.py (cffi API mode).

Raw system calls over the kernel's UAPI header ``<linux/io_uring.h>``; no
liburing. The ring's shared indices need acquire/release ordering, which plain
Python (or cffi ABI mode) cannot give, and completions are copied here into flat
arrays so Python walks one list per poll instead of reading each CQE field
through cffi.

User data: 0 marks a completion nobody waits for (a cancel request's own
result), 1 the eventfd read that wakes the ring; ops use 2 and up: even for
queued recvs and sends, odd for the SQEs written directly.

Recvs and sends reach the ring in batches: Python queues each as two
integers in one list (fd << 1 | is-a-send, length) and its buffer in
another, and hands both lists to one call (``uring_wait``, or ``uring_queue``
before any SQE written directly), which writes their SQEs: one cffi call per
poll instead of one per op, and flat lists of small integers and pointers,
which cffi converts several times faster than a list of struct tuples (each
item still costs a few hundred instructions: the fewer per request, the better).
The user data of the queued requests is not in the lists: they are the latest
queued ones, which take consecutive even numbers, so the call gets the next
one (``next_ud``) and request i of n has next_ud - 2(n - i). User data grows with every request, so
a request at or below ``queued_ud`` is in the ring already: lists handed over
again (an exception stopped Python before it cleared them) write nothing
twice. A NULL buffer marks a request taken back before it was written.

Kept in a ``.py`` module (strings) so that an sdist carries it like any other
source file.
"""

CDEF = r"""
struct uring {
    int fd;
    int wake_armed;     /* the eventfd read is in the kernel */
    int closing;        /* do not re-arm the eventfd read */
    unsigned nstaged;   /* completions copied to ud/res by the last uring_wait */
    unsigned cap;       /* room in ud/res */
    unsigned backlog;   /* the last uring_wait() left requests of its queue out: keep them */
    uint64_t *ud;
    int32_t *res;
    uint64_t queued_ud; /* the last queued request written into the ring */
    ...;
};

int uring_probe(void);
int uring_open(struct uring *r, unsigned sq_entries, unsigned cq_entries, int wake_fd);
void uring_close(struct uring *r);
int uring_submit(struct uring *r);
int uring_queue(struct uring *r, uint64_t next_ud, int64_t *q, void **bufs, unsigned n);
int uring_wait(struct uring *r, int64_t timeout_ns, uint64_t next_ud, int64_t *q, void **bufs, unsigned n);
int uring_accept(struct uring *r, int fd, void *addr, void *addrlen, uint64_t ud);
int uring_connect(struct uring *r, int fd, void *addr, unsigned addrlen, uint64_t ud);
int uring_poll_in(struct uring *r, int fd, uint64_t ud);
struct iovec { void *iov_base; size_t iov_len; ...; };
struct uring_msg { char name[128]; ...; };
int uring_msg(struct uring *r, int fd, struct uring_msg *m, struct iovec *iov, unsigned niov,
              unsigned namelen, int flags, int send, uint64_t ud);
int uring_shutdown(struct uring *r, int fd, int how, uint64_t ud);
int uring_cancel(struct uring *r, uint64_t target);
int uring_void(struct uring *r, uint64_t ud);
"""

SOURCE = r"""
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/io_uring.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif

#define UD_IGNORE 0
#define UD_WAKE 1

struct uring {
    int fd;
    int wake_armed;
    int closing;
    unsigned nstaged;
    unsigned cap;
    unsigned backlog;
    uint64_t *ud;
    int32_t *res;
    uint64_t queued_ud;
    int wake_fd;
    uint64_t wake_buf;
    unsigned sq_entries;
    unsigned *sq_head, *sq_tail, *sq_mask;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_map_len, cq_map_len, sqes_len;
    unsigned tail;      /* next SQE to fill (published to *sq_tail at submit) */
    unsigned published; /* last tail the kernel was told about */
};

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    long rc = syscall(__NR_io_uring_setup, entries, p);
    return rc < 0 ? -errno : (int)rc;
}

static int sys_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz)
{
    long rc = syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, arg, argsz);
    return rc < 0 ? -errno : (int)rc;
}

/* 0 if a ring can be made here, else -errno of io_uring_setup (ENOSYS: no
   io_uring; EPERM: disabled by sysctl; ENOMEM: RLIMIT_MEMLOCK on kernels before
   5.12), or -EOPNOTSUPP if a feature the backend needs is missing. */
int uring_probe(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = sys_setup(4, &p);
    if (fd < 0)
        return fd;
    close(fd);
    unsigned need = IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG | IORING_FEAT_SUBMIT_STABLE;
    return (p.features & need) == need ? 0 : -EOPNOTSUPP;
}

static struct io_uring_sqe *get_sqe(struct uring *r);
void uring_close(struct uring *r);

static void arm_wake(struct uring *r)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return; /* next poll re-arms: see reap() */
    sqe->opcode = IORING_OP_READ;
    sqe->fd = r->wake_fd;
    sqe->addr = (uint64_t)(uintptr_t)&r->wake_buf;
    sqe->len = sizeof r->wake_buf;
    sqe->user_data = UD_WAKE;
    r->wake_armed = 1;
}

int uring_open(struct uring *r, unsigned sq_entries, unsigned cq_entries, int wake_fd)
{
    struct io_uring_params p;
    int fd = -1;
    /* COOP_TASKRUN: no interrupt to run completion work; this thread enters the
       kernel to wait anyway. Older kernels refuse the flags: retry without. */
    unsigned flag_sets[2] = {IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
                             IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP};
    memset(r, 0, sizeof *r);
    r->fd = -1;
    for (int i = 0; i < 2; i++) {
        memset(&p, 0, sizeof p);
        p.flags = flag_sets[i];
        p.cq_entries = cq_entries;
        fd = sys_setup(sq_entries, &p);
        if (fd != -EINVAL)
            break;
    }
    if (fd < 0)
        return fd;
    r->fd = fd;
    r->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (r->cq_map_len > r->sq_map_len)
            r->sq_map_len = r->cq_map_len;
        r->cq_map_len = r->sq_map_len;
    }
    r->sq_map = mmap(0, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED)
        goto fail;
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(0, r->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED)
            goto fail;
    }
    r->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(0, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        goto fail;
    char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_entries = p.sq_entries;
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++)
        array[i] = i; /* SQEs are always filled in ring order */
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    r->tail = r->published = *r->sq_tail;
    r->cap = p.cq_entries;
    r->ud = malloc(r->cap * sizeof *r->ud);
    r->res = malloc(r->cap * sizeof *r->res);
    if (!r->ud || !r->res) {
        errno = ENOMEM;
        goto fail;
    }
    r->wake_fd = wake_fd;
    arm_wake(r);
    return 0;
fail:;
    int err = -errno;
    uring_close(r);
    return err;
}

void uring_close(struct uring *r)
{
    if (r->sqes && r->sqes != MAP_FAILED)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_map_len);
    if (r->sq_map && r->sq_map != MAP_FAILED)
        munmap(r->sq_map, r->sq_map_len);
    if (r->fd >= 0)
        close(r->fd);
    free(r->ud);
    free(r->res);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

static int publish_and_enter(struct uring *r, unsigned min_complete, unsigned flags, void *arg, size_t argsz)
{
    unsigned n = r->tail - r->published;
    if (n)
        __atomic_store_n(r->sq_tail, r->tail, __ATOMIC_RELEASE);
    int rc = sys_enter(r->fd, n, min_complete, flags, arg, argsz);
    if (rc > 0)
        r->published += (unsigned)rc;
    return rc;
}

int uring_submit(struct uring *r)
{
    if (r->tail == r->published)
        return 0;
    int rc = publish_and_enter(r, 0, 0, NULL, 0);
    return rc < 0 ? rc : 0;
}

static struct io_uring_sqe *get_sqe(struct uring *r)
{
    unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    if (r->tail - head >= r->sq_entries) {
        if (uring_submit(r) < 0)
            return NULL;
        head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
        if (r->tail - head >= r->sq_entries)
            return NULL;
    }
    struct io_uring_sqe *sqe = &r->sqes[r->tail & *r->sq_mask];
    memset(sqe, 0, sizeof *sqe);
    r->tail++;
    return sqe;
}

/* Copy the completions the kernel posted into ud/res (skipping those nobody
   waits for), then hand the slots back. */
static void reap(struct uring *r)
{
    unsigned head = *r->cq_head;
    unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    unsigned mask = *r->cq_mask;
    unsigned n = r->nstaged;
    while (head != tail && n < r->cap) {
        struct io_uring_cqe *cqe = &r->cqes[head & mask];
        uint64_t ud = cqe->user_data;
        if (ud == UD_WAKE)
            r->wake_armed = 0;
        else if (ud != UD_IGNORE) {
            r->ud[n] = ud;
            r->res[n] = cqe->res;
            n++;
        }
        head++;
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    r->nstaged = n;
    if (!r->wake_armed && !r->closing)
        arm_wake(r);
}

/* Write the SQEs of the n requests not written yet (user data next_ud - 2(n - i);
   q: fd << 1 | is-a-send and length of each; bufs: its buffer, NULL for one
   taken back). 1 if all are in the ring; 0 if it is full and the kernel takes
   nothing now (the rest go on a later call). */
int uring_queue(struct uring *r, uint64_t next_ud, int64_t *q, void **bufs, unsigned n)
{
    uint64_t base = next_ud - 2 * (uint64_t)n;
    for (unsigned i = 0; i < n; i++, q += 2) {
        uint64_t ud = base + 2 * (uint64_t)i;
        if (ud <= r->queued_ud)
            continue;
        if (!bufs[i]) {
            r->queued_ud = ud;
            continue;
        }
        struct io_uring_sqe *sqe = get_sqe(r);
        if (!sqe)
            return 0;
        sqe->fd = (int)(q[0] >> 1);
        sqe->addr = (uint64_t)(uintptr_t)bufs[i];
        /* At most what one read or write may move (Linux's MAX_RW_COUNT): a
           longer buffer's length would wrap in the 32-bit field; a recv then reads
           less, and a short send goes on from where it stopped. */
        sqe->len = q[1] > 0x7ffff000 ? 0x7ffff000u : (unsigned)q[1];
        sqe->user_data = ud;
        if (q[0] & 1) {
            /* MSG_WAITALL: the kernel retries short sends itself, so the completion
               says all of it went out, or how much did before an error or a cancel. */
            sqe->opcode = IORING_OP_SEND;
            sqe->msg_flags = MSG_WAITALL | MSG_NOSIGNAL;
        } else {
            /* POLL_FIRST: arm the poll at once instead of first trying a recv that,
               in a request/response exchange, finds nothing yet (the reply to what
               was just sent has not come back): one failed recv per message saved.
               Data already there is found by that poll at once. */
            sqe->opcode = IORING_OP_RECV;
            sqe->ioprio = IORING_RECVSEND_POLL_FIRST;
        }
        r->queued_ud = ud;
    }
    return 1;
}

/* Write the n queued requests (see uring_queue; backlog says if some are left), then
   submit what is queued, wait up to timeout_ns (-1: no limit, 0: do not block)
   for one completion, stage what arrived. Returns twice how many are staged, plus
   1 if requests were left queued (backlog: one return value, no struct field
   read from Python per poll), or -errno of io_uring_enter (a signal's EINTR and a
   timeout are no errors: what arrived is staged all the same, and the caller's
   signal handler runs next). What the last call staged is forgotten: the caller
   handled it (no field write from Python per poll). */
int uring_wait(struct uring *r, int64_t timeout_ns, uint64_t next_ud, int64_t *q, void **bufs, unsigned n)
{
    r->nstaged = 0;
    r->backlog = n && !uring_queue(r, next_ud, q, bufs, n);
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    unsigned min_complete = 0;
    memset(&arg, 0, sizeof arg);
    if (timeout_ns != 0 && r->nstaged == 0) {
        unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        if (tail == *r->cq_head)
            min_complete = 1;
    }
    if (timeout_ns > 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        arg.ts = (uint64_t)(uintptr_t)&ts;
    }
    int rc = 0;
    if (min_complete || r->tail != r->published)
        rc = publish_and_enter(r, min_complete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
    else
        rc = sys_enter(r->fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0); /* run deferred completion work */
    reap(r);
    if (rc >= 0 || rc == -ETIME || rc == -EINTR)
        return (int)(r->nstaged << 1 | r->backlog);
    return rc;
}

int uring_accept(struct uring *r, int fd, void *addr, void *addrlen, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->addr2 = (uint64_t)(uintptr_t)addrlen;
    sqe->accept_flags = SOCK_CLOEXEC | SOCK_NONBLOCK;
    sqe->user_data = ud;
    return 0;
}

int uring_connect(struct uring *r, int fd, void *addr, unsigned addrlen, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    sqe->opcode = IORING_OP_CONNECT;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)addr;
    sqe->off = addrlen;
    sqe->user_data = ud;
    return 0;
}

/* A one-shot poll for POLLIN: completes with the ready mask (POLLIN, POLLHUP,
   POLLERR: data, end of stream or an error) and reads nothing, with no buffer
   in the kernel. */
int uring_poll_in(struct uring *r, int fd, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = POLLIN;
    sqe->user_data = ud;
    return 0;
}

/* What one IORING_OP_SENDMSG/RECVMSG hands the kernel besides its iovec array
   and buffers: the msghdr and room for a sockaddr (a sockaddr_storage). */
struct uring_msg {
    char name[128];
    struct msghdr hdr;
};

/* SENDMSG (send) or RECVMSG of the niov buffers in iov, with m's name (namelen
   bytes: the address to send to, or the room for the sender's; 0: none). m, iov
   and the buffers stay the caller's until the op's completion. */
int uring_msg(struct uring *r, int fd, struct uring_msg *m, struct iovec *iov, unsigned niov,
              unsigned namelen, int flags, int send, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    memset(&m->hdr, 0, sizeof m->hdr);
    m->hdr.msg_name = namelen ? m->name : NULL;
    m->hdr.msg_namelen = namelen;
    m->hdr.msg_iov = iov;
    m->hdr.msg_iovlen = niov;
    sqe->opcode = send ? IORING_OP_SENDMSG : IORING_OP_RECVMSG;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)&m->hdr;
    sqe->len = 1;
    sqe->msg_flags = (unsigned)flags;
    sqe->user_data = ud;
    return 0;
}

int uring_shutdown(struct uring *r, int fd, int how, uint64_t ud)
{
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    sqe->opcode = IORING_OP_SHUTDOWN;
    sqe->fd = fd;
    sqe->len = (unsigned)how;
    sqe->user_data = ud;
    return 0;
}

/* Ask the kernel to cancel the op with user data `target`. The op's own
   completion is the answer (cancelled, or its real result); this request's
   result (0, -EALREADY, -ENOENT) is dropped. */
int uring_cancel(struct uring *r, uint64_t target)
{
    if (target == UD_WAKE)
        r->closing = 1;
    struct io_uring_sqe *sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = UD_IGNORE;
    return 0;
}

/* Turn the not yet submitted SQEs of op `ud` into no-ops whose completion is
   dropped: the kernel never sees them (nor the descriptor number they name).
   Returns how many there were. */
int uring_void(struct uring *r, uint64_t ud)
{
    int n = 0;
    for (unsigned i = r->published; i != r->tail; i++) {
        struct io_uring_sqe *sqe = &r->sqes[i & *r->sq_mask];
        if (sqe->user_data == ud) {
            memset(sqe, 0, sizeof *sqe);
            sqe->opcode = IORING_OP_NOP;
            sqe->user_data = UD_IGNORE;
            n++;
        }
    }
    return n;
}
"""
