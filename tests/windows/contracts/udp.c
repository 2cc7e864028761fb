/* UDP facts: WSARecvFrom/WSASendTo with an event, one datagram per completion, the
 * truncation error (WSAEMSGSIZE with the buffer full), and SIO_UDP_CONNRESET. The
 * backend reports a WSAEMSGSIZE completion as a truncated datagram, never as an
 * error, and switches SIO_UDP_CONNRESET/SIO_UDP_NETRESET off on every datagram
 * socket. */
#include "common.h"

#ifndef SIO_UDP_NETRESET
#define SIO_UDP_NETRESET _WSAIOW(IOC_VENDOR, 15)
#endif

static SOCKET udp_bound(struct sockaddr_in *sa)
{
    int len = sizeof *sa;
    SOCKET s = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET)
        die("udp socket");
    loopback(sa, 0);
    if (bind(s, (struct sockaddr *)sa, sizeof *sa) || getsockname(s, (struct sockaddr *)sa, &len))
        die("udp bind");
    return s;
}

static int recvfrom_start(SOCKET s, char *buf, ULONG len, OVERLAPPED *ov, HANDLE ev,
                          struct sockaddr_in *from, INT *fromlen, int *err)
{
    WSABUF wb;
    DWORD flags = 0, n = 0;
    int rc;
    wb.len = len;
    wb.buf = buf;
    memset(ov, 0, sizeof *ov);
    ov->hEvent = ev;
    *fromlen = sizeof *from;
    rc = WSARecvFrom(s, &wb, 1, &n, &flags, (struct sockaddr *)from, fromlen, ov, NULL);
    *err = rc == 0 ? 0 : WSAGetLastError();
    return rc;
}

static void send_to(SOCKET s, const char *data, int len, struct sockaddr_in *to)
{
    if (sendto(s, data, len, 0, (struct sockaddr *)to, sizeof *to) != len)
        die("sendto");
}

static int switch_off(SOCKET s, DWORD code, int *err)
{
    BOOL off = FALSE;
    DWORD ret = 0;
    int rc = WSAIoctl(s, code, &off, sizeof off, NULL, 0, &ret, NULL, NULL);
    *err = rc == 0 ? 0 : WSAGetLastError();
    return rc;
}

static void one_datagram_each(void)
{
    struct sockaddr_in sa, sb, from1, from2;
    INT l1, l2;
    OVERLAPPED o1, o2;
    char b1[64], b2[64];
    DWORD n1 = 0, n2 = 0;
    int rc1, rc2, e1, e2;
    HANDLE v1 = WSACreateEvent(), v2 = WSACreateEvent();
    SOCKET a = udp_bound(&sa), b = udp_bound(&sb);

    rc1 = recvfrom_start(a, b1, sizeof b1, &o1, v1, &from1, &l1, &e1);
    rc2 = recvfrom_start(a, b2, sizeof b2, &o2, v2, &from2, &l2, &e2);
    CHECK("recvfrom_no_datagram_pends_997", rc1 == SOCKET_ERROR && e1 == WSA_IO_PENDING
          && rc2 == SOCKET_ERROR && e2 == WSA_IO_PENDING, "rc=%d/%d err=%d/%d", rc1, rc2, e1, e2);
    send_to(b, "first", 5, &sa);
    send_to(b, "second!", 7, &sa);
    {
        int d1 = wait_signalled(v1, WAIT_MS), d2 = wait_signalled(v2, WAIT_MS);
        BOOL ok1 = get_result(a, &o1, &n1, &e1), ok2 = get_result(a, &o2, &n2, &e2);
        CHECK("two_pending_recvfroms_one_datagram_each_in_order",
              d1 && d2 && ok1 && ok2 && n1 == 5 && n2 == 7 && !memcmp(b1, "first", 5)
              && !memcmp(b2, "second!", 7), "signalled=%d/%d ok=%d/%d n=%lu/%lu", d1, d2, ok1, ok2,
              (unsigned long)n1, (unsigned long)n2);
        CHECK("recvfrom_writes_the_sender_address",
              l1 == sizeof sb && from1.sin_port == sb.sin_port && from2.sin_port == sb.sin_port,
              "fromlen=%d port=%d want %d", l1, ntohs(from1.sin_port), ntohs(sb.sin_port));
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(v1);
    WSACloseEvent(v2);
}

static void truncation(void)
{
    struct sockaddr_in sa, sb, from;
    INT fl;
    OVERLAPPED ov;
    char buf[4];
    DWORD n = 0;
    int rc, err;
    HANDLE ev = WSACreateEvent();
    SOCKET a = udp_bound(&sa), b = udp_bound(&sb);

    /* pending, then a datagram larger than the buffer */
    rc = recvfrom_start(a, buf, sizeof buf, &ov, ev, &from, &fl, &err);
    send_to(b, "0123456789", 10, &sa);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("recvfrom_truncated_completes_10040_buffer_full",
              done && !ok && err == WSAEMSGSIZE && !memcmp(buf, "0123", 4) && ov.InternalHigh == 4,
              "signalled=%d ok=%d err=%d n=%lu InternalHigh=%lu", done, ok, err, (unsigned long)n,
              (unsigned long)ov.InternalHigh);
    }
    /* the datagram is already there: the call itself fails with 10040 */
    send_to(b, "abcdefghij", 10, &sa);
    if (!wait_readable(a, WAIT_MS))
        die("datagram never arrived");
    memset(buf, 0, sizeof buf);
    rc = recvfrom_start(a, buf, sizeof buf, &ov, ev, &from, &fl, &err);
    CHECK("recvfrom_truncated_at_once_fails_10040_buffer_full",
          rc == SOCKET_ERROR && err == WSAEMSGSIZE && !memcmp(buf, "abcd", 4) && from.sin_port == sb.sin_port,
          "rc=%d err=%d event signalled=%d", rc, err, is_signalled(ev));
    /* and a plain WSARecv on a datagram socket */
    send_to(b, "ABCDEFGHIJ", 10, &sa);
    if (!wait_readable(a, WAIT_MS))
        die("datagram never arrived");
    memset(buf, 0, sizeof buf);
    rc = recv_start(a, buf, sizeof buf, &ov, ev, &n, &err);
    CHECK("wsarecv_on_datagram_truncated_fails_10040",
          rc == SOCKET_ERROR && err == WSAEMSGSIZE && !memcmp(buf, "ABCD", 4), "rc=%d err=%d", rc, err);
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
}

static void connreset_off(void)
{
    struct sockaddr_in sa, sb, dead, from;
    INT fl;
    OVERLAPPED ov;
    char buf[64];
    DWORD n = 0;
    int err, rc;
    HANDLE ev = WSACreateEvent();
    SOCKET a = udp_bound(&sa), b = udp_bound(&sb);
    SOCKET gone = udp_bound(&dead);
    closesocket(gone);  /* nobody is bound there now */

    {
        int err2, rc2;
        rc = switch_off(a, SIO_UDP_CONNRESET, &err);
        rc2 = switch_off(a, SIO_UDP_NETRESET, &err2);  /* best effort in the backend: detail only */
        CHECK("sio_udp_connreset_can_be_switched_off", rc == 0, "rc=%d err=%d; SIO_UDP_NETRESET rc=%d err=%d",
              rc, err, rc2, err2);
    }
    recvfrom_start(a, buf, sizeof buf, &ov, ev, &from, &fl, &err);
    send_to(a, "nobody", 6, &dead);
    Sleep(QUIET_MS);
    CHECK("connreset_off_port_unreachable_fails_no_pending_recvfrom", !is_signalled(ev),
          "signalled=%d", is_signalled(ev));
    send_to(b, "hello", 5, &sa);
    {
        int done = wait_signalled(ev, WAIT_MS);
        BOOL ok = get_result(a, &ov, &n, &err);
        CHECK("connreset_off_recvfrom_gets_the_next_datagram", done && ok && n == 5,
              "signalled=%d ok=%d err=%d n=%lu", done, ok, err, (unsigned long)n);
    }
    closesocket(a);
    closesocket(b);
    WSACloseEvent(ev);
}

int main(void)
{
    start();
    one_datagram_each();
    truncation();
    connreset_off();
    return finish();
}
