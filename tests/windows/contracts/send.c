/* WSASend facts for a big send to a peer that is not reading: it pends, completes
 * with the full length (stream sockets: all or error), and a cancel reports how much
 * already went out (InternalHigh), which the backend must surface. */
#include "common.h"

#define BIG (8 * 1024 * 1024)
/* The cancelled send must still be pending when it is cancelled: after part 1 the
 * loopback buffers may have grown (autotuning) to hold a whole 8 MiB, so part 2 sends
 * far more than any socket buffer can absorb. */
#define HUGE (64 * 1024 * 1024)

/* Read and discard until total bytes arrived or the peer stops (bounded by SO_RCVTIMEO). */
static long drain(SOCKET s, long total)
{
    static char sink[65536];
    DWORD tmo = WAIT_MS;
    long got = 0;
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tmo, sizeof tmo);
    while (got < total) {
        int n = recv(s, sink, sizeof sink, 0);
        if (n <= 0)
            break;
        got += n;
    }
    return got;
}

int main(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    DWORD n;
    int rc, err;
    BOOL ok;
    char *big = malloc(HUGE);
    HANDLE ev = WSACreateEvent();
    start();
    if (!big)
        die("malloc");
    memset(big, 'x', HUGE);
    tcp_pair(&a, &b);

    /* 1. pends, then completes with everything once the peer reads */
    rc = send_start(a, big, BIG, &ov, ev, &n, &err);
    Sleep(QUIET_MS);
    CHECK("big_send_to_idle_peer_pends", rc == SOCKET_ERROR && err == WSA_IO_PENDING
          && !is_signalled(ev), "rc=%d err=%d n=%lu", rc, err, (unsigned long)n);
    {
        long got = drain(b, BIG);
        int done = wait_signalled(ev, WAIT_MS);
        ok = get_result(a, &ov, &n, &err);
        CHECK("big_send_completes_with_full_length", done && ok && n == BIG && got == BIG,
              "signalled=%d ok=%d n=%lu peer got %ld", done, ok, (unsigned long)n, got);
    }

    /* 2. cancel a big pending send: 995, with the part already sent in InternalHigh */
    rc = send_start(a, big, HUGE, &ov, ev, &n, &err);
    Sleep(QUIET_MS);
    if (rc != SOCKET_ERROR || err != WSA_IO_PENDING)
        die("second big send did not pend");
    ok = CancelIoEx((HANDLE)a, &ov);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL rok = get_result(a, &ov, &n, &err);
        CHECK("cancel_pending_send_result_995",
              ok && done && !rok && err == WSA_OPERATION_ABORTED,
              "CancelIoEx=%d signalled=%d ok=%d err=%d", ok, done, rok, err);
        CHECK("cancel_pending_send_reports_partial_count",
              ov.InternalHigh < (ULONG_PTR)HUGE && n == ov.InternalHigh,
              "InternalHigh=%llu lpcbTransfer=%lu of %d", (unsigned long long)ov.InternalHigh,
              (unsigned long)n, HUGE);
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
    free(big);
    return finish();
}
