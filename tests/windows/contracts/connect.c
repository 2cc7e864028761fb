/* AcceptEx / ConnectEx facts: the backend gets both through WSAIoctl
 * (SIO_GET_EXTENSION_FUNCTION_POINTER), must bind before ConnectEx, and must call
 * SO_UPDATE_ACCEPT_CONTEXT / SO_UPDATE_CONNECT_CONTEXT afterwards (Windows needs them
 * for getpeername/shutdown; Wine does not notice a missing one, so that part cannot
 * be pinned here). */
#include "common.h"

static void *ext_fn(SOCKET s, GUID guid, const char *fact)
{
    void *fn = NULL;
    DWORD n = 0;
    int rc = WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn,
                      sizeof fn, &n, NULL, NULL);
    check_fact(fact, rc == 0 && n == sizeof fn && fn != NULL,
               "rc=%d err=%d bytes=%lu", rc, rc ? WSAGetLastError() : 0, (unsigned long)n);
    return fn;
}

int main(void)
{
    GUID g_accept = WSAID_ACCEPTEX, g_connect = WSAID_CONNECTEX,
         g_sockaddrs = WSAID_GETACCEPTEXSOCKADDRS;
    LPFN_ACCEPTEX pAcceptEx;
    LPFN_CONNECTEX pConnectEx;
    LPFN_GETACCEPTEXSOCKADDRS pGetAcceptExSockaddrs;
    struct sockaddr_in lsa, any, closed;
    SOCKET l, acc, cli;
    OVERLAPPED aov, cov;
    HANDLE aev, cev;
    char abuf[2 * (sizeof(struct sockaddr_in6) + 16)];
    DWORD n;
    BOOL ok;
    int err;
    start();
    aev = WSACreateEvent();
    cev = WSACreateEvent();
    l = make_listener(&lsa);
    pAcceptEx = (LPFN_ACCEPTEX)ext_fn(l, g_accept, FACT("wsaioctl_gets_acceptex"));
    pConnectEx = (LPFN_CONNECTEX)ext_fn(l, g_connect, FACT("wsaioctl_gets_connectex"));
    pGetAcceptExSockaddrs = (LPFN_GETACCEPTEXSOCKADDRS)ext_fn(
        l, g_sockaddrs, FACT("wsaioctl_gets_getacceptexsockaddrs"));
    if (!pAcceptEx || !pConnectEx || !pGetAcceptExSockaddrs)
        return finish();

    /* ConnectEx needs a bound socket */
    cli = ovsock();
    memset(&cov, 0, sizeof cov);
    cov.hEvent = cev;
    ok = pConnectEx(cli, (struct sockaddr *)&lsa, sizeof lsa, NULL, 0, NULL, &cov);
    err = ok ? 0 : WSAGetLastError();
    CHECK("connectex_unbound_fails_10022", !ok && err == WSAEINVAL, "ok=%d err=%d", ok, err);
    closesocket(cli);

    /* ConnectEx to a port nobody listens on: 10061, at once or through the event
     * (Windows retries SYNs for ~2 s on loopback, hence the long bound) */
    {
        SOCKET tmp = ovsock();
        int len = sizeof closed;
        loopback(&closed, 0);
        if (bind(tmp, (struct sockaddr *)&closed, sizeof closed)
            || getsockname(tmp, (struct sockaddr *)&closed, &len))
            die("bind tmp");
        closesocket(tmp);   /* now a free port: nothing listens there */
    }
    cli = ovsock();
    loopback(&any, 0);
    if (bind(cli, (struct sockaddr *)&any, sizeof any))
        die("bind client");
    memset(&cov, 0, sizeof cov);
    cov.hEvent = cev;
    ok = pConnectEx(cli, (struct sockaddr *)&closed, sizeof closed, NULL, 0, NULL, &cov);
    err = ok ? 0 : WSAGetLastError();
    if (!ok && err == WSA_IO_PENDING) {
        int done = wait_signalled(cev, WAIT_MS);
        ok = get_result(cli, &cov, &n, &err);
        if (!done)
            err = -1;
    }
    CHECK("connectex_closed_port_fails_10061", !ok && err == WSAECONNREFUSED,
          "ok=%d err=%d", ok, err);
    closesocket(cli);

    /* AcceptEx pends with no client; ConnectEx + AcceptEx then both complete */
    acc = ovsock();
    memset(&aov, 0, sizeof aov);
    aov.hEvent = aev;
    ok = pAcceptEx(l, acc, abuf, 0, sizeof(struct sockaddr_in6) + 16,
                   sizeof(struct sockaddr_in6) + 16, &n, &aov);
    err = ok ? 0 : WSAGetLastError();
    Sleep(QUIET_MS);
    CHECK("acceptex_without_client_pends_997", !ok && err == WSA_IO_PENDING
          && !is_signalled(aev), "ok=%d err=%d", ok, err);

    cli = ovsock();
    if (bind(cli, (struct sockaddr *)&any, sizeof any))
        die("bind client 2");
    memset(&cov, 0, sizeof cov);
    cov.hEvent = cev;
    ok = pConnectEx(cli, (struct sockaddr *)&lsa, sizeof lsa, NULL, 0, NULL, &cov);
    err = ok ? 0 : WSAGetLastError();
    {
        int cdone = ok || (err == WSA_IO_PENDING && wait_signalled(cev, WAIT_MS));
        BOOL cok = cdone && get_result(cli, &cov, &n, &err);
        int adone = wait_signalled(aev, WAIT_MS);
        DWORD an = 0;
        int aerr = 0;
        BOOL aok = adone && get_result(l, &aov, &an, &aerr);
        CHECK("connectex_completes", cdone && cok, "done=%d ok=%d err=%d", cdone, cok, err);
        CHECK("acceptex_completes_on_connect", adone && aok && an == 0,
              "signalled=%d ok=%d bytes=%lu err=%d", adone, aok, (unsigned long)an, aerr);
    }

    {
        int rc = setsockopt(acc, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&l, sizeof l);
        CHECK("so_update_accept_context_ok", rc == 0, "rc=%d err=%d", rc,
              rc ? WSAGetLastError() : 0);
        rc = setsockopt(cli, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0);
        CHECK("so_update_connect_context_ok", rc == 0, "rc=%d err=%d", rc,
              rc ? WSAGetLastError() : 0);
    }

    /* GetAcceptExSockaddrs reports the connecting socket's address as the remote one */
    {
        struct sockaddr *loc = NULL, *rem = NULL;
        struct sockaddr_in cname;
        int loclen = 0, remlen = 0, clen = sizeof cname;
        getsockname(cli, (struct sockaddr *)&cname, &clen);
        pGetAcceptExSockaddrs(abuf, 0, sizeof(struct sockaddr_in6) + 16,
                              sizeof(struct sockaddr_in6) + 16, &loc, &loclen, &rem, &remlen);
        CHECK("getacceptexsockaddrs_gives_peer_and_local",
              rem && loc && remlen >= (int)sizeof(struct sockaddr_in)
              && ((struct sockaddr_in *)rem)->sin_port == cname.sin_port
              && ((struct sockaddr_in *)loc)->sin_port == lsa.sin_port,
              "remote port %u (client %u), local port %u (listener %u)",
              rem ? ntohs(((struct sockaddr_in *)rem)->sin_port) : 0, ntohs(cname.sin_port),
              loc ? ntohs(((struct sockaddr_in *)loc)->sin_port) : 0, ntohs(lsa.sin_port));
    }

    /* the pair carries data both ways */
    {
        char buf[8] = {0};
        int got;
        send_all(cli, "ping", 4);
        got = wait_readable(acc, WAIT_MS) ? recv(acc, buf, sizeof buf, 0) : -1;
        CHECK("accepted_pair_carries_data", got == 4 && memcmp(buf, "ping", 4) == 0,
              "got %d", got);
    }

    closesocket(cli);
    closesocket(acc);
    closesocket(l);
    WSACloseEvent(aev);
    WSACloseEvent(cev);
    return finish();
}
