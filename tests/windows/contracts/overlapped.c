/* What the OVERLAPPED itself says. The backend lets a slot leave the kernel's hands
 * only when ov.Internal != STATUS_PENDING (CPython's HasOverlappedIoCompleted): not on
 * an event sighting alone, and not on a failed WSAGetOverlappedResult, which also
 * fails for a closed handle whatever the op's state. */
#include "common.h"

#ifndef STATUS_PENDING
#define STATUS_PENDING ((DWORD)0x00000103L)
#endif

static void internal_tracks_the_op(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[16];
    DWORD n;
    int rc, err;
    BOOL ok;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    rc = recv_start(a, buf, sizeof buf, &ov, ev, &n, &err); /* ov zeroed before the call */
    if (rc != SOCKET_ERROR || err != WSA_IO_PENDING)
        die("recv did not pend");
    CHECK("pending_recv_internal_is_status_pending", ov.Internal == STATUS_PENDING,
          "Internal=0x%llx", (unsigned long long)ov.Internal);
    send_all(b, "x", 1);
    {
        int done = wait_signalled(ev, WAIT_MS);
        CHECK("completed_recv_internal_is_its_status", done && ov.Internal == 0 && ov.InternalHigh == 1,
              "signalled=%d Internal=0x%llx InternalHigh=%llu", done, (unsigned long long)ov.Internal,
              (unsigned long long)ov.InternalHigh);
    }
    closesocket(a);
    /* the op is over, but the handle is gone: the call fails on the handle alone */
    ok = get_result(a, &ov, &n, &err);
    CHECK("get_result_on_a_closed_handle_fails_10038", !ok && err == WSAENOTSOCK, "ok=%d err=%d", ok, err);
    closesocket(b);
    WSACloseEvent(ev);
}

static void cancel_pending_accept(void)
{
    struct sockaddr_in sa;
    SOCKET l = make_listener(&sa);
    SOCKET acc = ovsock();
    OVERLAPPED ov;
    char abuf[2 * (sizeof(struct sockaddr_in6) + 16)];
    DWORD n = 0;
    BOOL ok;
    HANDLE ev = WSACreateEvent();

    memset(&ov, 0, sizeof ov);
    ov.hEvent = ev;
    ok = AcceptEx(l, acc, abuf, 0, sizeof(struct sockaddr_in6) + 16, sizeof(struct sockaddr_in6) + 16,
                  &n, &ov);
    if (ok || WSAGetLastError() != WSA_IO_PENDING)
        die("AcceptEx did not pend");
    CHECK("pending_accept_internal_is_status_pending", ov.Internal == STATUS_PENDING,
          "Internal=0x%llx", (unsigned long long)ov.Internal);
    ok = CancelIoEx((HANDLE)l, &ov);
    {
        int done = wait_signalled(ev, WAIT_MS);
        CHECK("cancelled_accept_completes", ok && done && ov.Internal != STATUS_PENDING,
              "CancelIoEx=%d signalled=%d Internal=0x%llx", ok, done, (unsigned long long)ov.Internal);
    }
    closesocket(acc);
    closesocket(l);
    WSACloseEvent(ev);
}

int main(void)
{
    start();
    internal_tracks_the_op();
    cancel_pending_accept();
    return finish();
}
