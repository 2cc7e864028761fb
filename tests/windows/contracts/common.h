/* Shared helpers for the Winsock contract programs (built with mingw-w64, run under Wine).
 *
 * Each program pins facts the Windows backend relies on. Every fact goes through
 * CHECK("name", condition, "detail fmt", ...), which prints exactly one line:
 *     PASS name: detail        or        FAIL name: detail
 * tests/windows/test_contracts.py finds the names by grepping CHECK("...") in the
 * sources, so each fact is its own pytest result. The exit code is the number of
 * failures (capped), 3 if the watchdog fired.
 *
 * Every wait is bounded (WAIT_MS) and a watchdog thread ends the process, so a Wine
 * misbehaviour shows up as FAIL lines, never as a hung test run.
 */
#ifndef OVERLAPIO_CONTRACT_COMMON_H
#define OVERLAPIO_CONTRACT_COMMON_H

#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MS 5000          /* upper bound for anything that should happen "soon" */
#define QUIET_MS 200          /* how long "nothing happens" is observed */
#define WATCHDOG_MS 25000     /* whole program */

static int g_failures;

static inline void check_fact(const char *name, int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s %s: ", ok ? "PASS" : "FAIL", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);           /* keep lines if the process dies later */
    if (!ok)
        g_failures++;
}
#define CHECK(name, cond, ...) check_fact(name, (cond) ? 1 : 0, __VA_ARGS__)
/* Marks a fact name passed around as data (the collector greps CHECK/FACT). */
#define FACT(name) name

/* Fatal setup problem: not a fact, but must be visible and must not hang. */
static inline void die(const char *what)
{
    printf("FAIL setup: %s (WSAGetLastError=%d, GetLastError=%lu)\n", what,
           WSAGetLastError(), (unsigned long)GetLastError());
    fflush(stdout);
    ExitProcess(2);
}

static inline DWORD WINAPI watchdog_thread(LPVOID arg)
{
    (void)arg;
    Sleep(WATCHDOG_MS);
    printf("FAIL watchdog: program still running after %d ms\n", WATCHDOG_MS);
    fflush(stdout);
    ExitProcess(3);
    return 0;
}

static inline void start(void)
{
    WSADATA wsa;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!CreateThread(NULL, 0, watchdog_thread, NULL, 0, NULL))
        die("watchdog thread");
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
        die("WSAStartup");
}

static inline int finish(void)
{
    WSACleanup();
    fflush(stdout);
    return g_failures > 100 ? 100 : g_failures;
}

/* An overlapped TCP socket, as the backend creates them. */
static inline SOCKET ovsock(void)
{
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (s == INVALID_SOCKET)
        die("WSASocketW");
    return s;
}

static inline void loopback(struct sockaddr_in *sa, unsigned short port)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* A listening socket on 127.0.0.1:<ephemeral>; its address in *sa. */
static inline SOCKET make_listener(struct sockaddr_in *sa)
{
    int len = sizeof *sa;
    SOCKET l = ovsock();
    loopback(sa, 0);
    if (bind(l, (struct sockaddr *)sa, sizeof *sa) || listen(l, 16)
        || getsockname(l, (struct sockaddr *)sa, &len))
        die("listener");
    return l;
}

/* A connected pair of overlapped sockets (set up with plain blocking calls). */
static inline void tcp_pair(SOCKET *a, SOCKET *b)
{
    struct sockaddr_in sa;
    SOCKET l = make_listener(&sa);
    *a = ovsock();
    if (connect(*a, (struct sockaddr *)&sa, sizeof sa))
        die("connect");
    *b = accept(l, NULL, NULL);
    if (*b == INVALID_SOCKET)
        die("accept");
    closesocket(l);
}

static inline int is_signalled(HANDLE ev)
{
    return WaitForSingleObject(ev, 0) == WAIT_OBJECT_0;
}

static inline int wait_signalled(HANDLE ev, DWORD ms)
{
    return WaitForSingleObject(ev, ms) == WAIT_OBJECT_0;
}

/* Wait until the socket has unread data (bounded), so a following WSARecv is "immediate". */
static inline int wait_readable(SOCKET s, int ms)
{
    fd_set r;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    FD_ZERO(&r);
    FD_SET(s, &r);
    return select(0, &r, NULL, NULL, &tv) == 1;
}

static inline unsigned long unread_bytes(SOCKET s)
{
    u_long n = 0;
    if (ioctlsocket(s, FIONREAD, &n))
        return (unsigned long)-1;
    return n;
}

/* Start an overlapped WSARecv; returns its return value, *err = WSAGetLastError() or 0. */
static inline int recv_start(SOCKET s, char *buf, ULONG len, OVERLAPPED *ov, HANDLE ev,
                      DWORD *nbytes, int *err)
{
    WSABUF wb;
    DWORD flags = 0;
    int rc;
    wb.len = len;
    wb.buf = buf;
    memset(ov, 0, sizeof *ov);
    ov->hEvent = ev;
    *nbytes = 0;
    rc = WSARecv(s, &wb, 1, nbytes, &flags, ov, NULL);
    *err = rc == 0 ? 0 : WSAGetLastError();
    return rc;
}

static inline int send_start(SOCKET s, char *buf, ULONG len, OVERLAPPED *ov, HANDLE ev,
                      DWORD *nbytes, int *err)
{
    WSABUF wb;
    int rc;
    wb.len = len;
    wb.buf = buf;
    memset(ov, 0, sizeof *ov);
    ov->hEvent = ev;
    *nbytes = 0;
    rc = WSASend(s, &wb, 1, nbytes, 0, ov, NULL);
    *err = rc == 0 ? 0 : WSAGetLastError();
    return rc;
}

/* Non-blocking result query; *err = WSAGetLastError() when it returns FALSE. */
static inline BOOL get_result(SOCKET s, OVERLAPPED *ov, DWORD *nbytes, int *err)
{
    DWORD flags = 0;
    BOOL ok;
    *nbytes = 0;
    ok = WSAGetOverlappedResult(s, ov, nbytes, FALSE, &flags);
    *err = ok ? 0 : WSAGetLastError();
    return ok;
}

/* Close with an RST instead of a FIN. */
static inline void abortive_close(SOCKET s)
{
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg);
    closesocket(s);
}

/* A plain blocking send of everything (used by the "peer" side). */
static inline void send_all(SOCKET s, const char *buf, int len)
{
    while (len > 0) {
        int n = send(s, buf, len, 0);
        if (n <= 0)
            die("send_all");
        buf += n;
        len -= n;
    }
}

#endif
