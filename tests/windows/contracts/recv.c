/* WSARecv facts: pending vs immediate completion, the event's state, zero-byte
 * reads, end of stream and reset. The backend's whole completion loop rests on these:
 * it waits on hEvent and asks WSAGetOverlappedResult, even for ops that completed
 * inside the WSARecv call. */
#include "common.h"

static void pending_then_data(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[64];
    DWORD n;
    int rc, err;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    rc = recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    CHECK("recv_no_data_pends_997", rc == SOCKET_ERROR && err == WSA_IO_PENDING,
          "rc=%d err=%d", rc, err);
    Sleep(QUIET_MS);
    CHECK("recv_pending_event_unsignalled", !is_signalled(ev), "event state after %d ms",
          QUIET_MS);
    {
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("recv_pending_getresult_996", !ok && err == WSA_IO_INCOMPLETE,
              "ok=%d err=%d", ok, err);
    }
    send_all(b, "hello", 5);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("recv_pending_completes_when_data_arrives",
              done && ok && n == 5 && memcmp(buf, "hello", 5) == 0,
              "signalled=%d ok=%d n=%lu err=%d", done, ok, (unsigned long)n, err);
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
}

static void immediate_and_reset(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[64];
    DWORD n;
    int rc, err;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    send_all(b, "data!", 5);
    if (!wait_readable(a, WAIT_MS))
        die("data never arrived");
    rc = recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    CHECK("recv_data_ready_returns_0", rc == 0 && n == 5 && memcmp(buf, "data!", 5) == 0,
          "rc=%d err=%d n=%lu", rc, err, (unsigned long)n);
    /* the backend never special-cases rc == 0: it relies on the event being set */
    CHECK("recv_immediate_signals_event", is_signalled(ev), "event state right after rc=0");
    {
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("recv_immediate_getresult_ok", ok && n == 5, "ok=%d n=%lu err=%d", ok,
              (unsigned long)n, err);
    }
    /* the event is still signalled; starting a new op must reset it, or the backend
     * would see a stale completion */
    rc = recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    CHECK("new_op_resets_signalled_event",
          rc == SOCKET_ERROR && err == WSA_IO_PENDING && !is_signalled(ev),
          "rc=%d err=%d signalled=%d", rc, err, is_signalled(ev));
    closesocket(b);   /* completes the pending recv with EOF before we free things */
    wait_signalled(ev, WAIT_MS);
    closesocket(a);
    WSACloseEvent(ev);
}

static void zero_byte_recv(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[16];
    DWORD n;
    int rc, err;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    rc = recv_start(a, buf, 0, &ov, ev, &n, &err);
    Sleep(QUIET_MS);
    CHECK("zero_byte_recv_pends", rc == SOCKET_ERROR && err == WSA_IO_PENDING
          && !is_signalled(ev), "rc=%d err=%d", rc, err);
    send_all(b, "xyz", 3);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("zero_byte_recv_completes_with_0", done && ok && n == 0,
              "signalled=%d ok=%d n=%lu err=%d", done, ok, (unsigned long)n, err);
    }
    {
        int got = recv(a, buf, sizeof buf, 0);
        CHECK("zero_byte_recv_leaves_data_unread", got == 3 && memcmp(buf, "xyz", 3) == 0,
              "recv afterwards got %d", got);
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
}

static void graceful_close(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[16];
    DWORD n;
    int err;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    shutdown(b, SD_SEND);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("peer_shutdown_completes_recv_with_0", done && ok && n == 0,
              "signalled=%d ok=%d n=%lu err=%d", done, ok, (unsigned long)n, err);
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
}

static void reset(void)
{
    SOCKET a, b;
    OVERLAPPED ov;
    char buf[16];
    DWORD n;
    int err;
    HANDLE ev = WSACreateEvent();
    tcp_pair(&a, &b);

    /* the recv must be pending before the RST arrives (Wine reports an RST that
     * arrived earlier like EOF, as Linux does) */
    recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    Sleep(50);
    abortive_close(b);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("peer_reset_fails_recv_10054", done && !ok && err == WSAECONNRESET,
              "signalled=%d ok=%d err=%d", done, ok, err);
    }
    closesocket(a);
    WSACloseEvent(ev);
}

int main(void)
{
    start();
    pending_then_data();
    immediate_and_reset();
    zero_byte_recv();
    graceful_close();
    reset();
    return finish();
}
