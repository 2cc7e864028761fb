/* The C twin of the stand-in: runs the scenario table (facts_table.py, written to a
 * file by the test and named by argv[1]) under Wine or Windows and prints one
 *     ROW <scenario> <index> <step> | field=value ...
 * line per recorded step. The verbs are documented in facts_table.py; this file only
 * interprets them. Every wait is bounded and the watchdog of common.h ends the run. */
#include "contracts/common.h"

#define MAXN 8
#define UNTOUCHED 0xBAD1
#define STATUS_PENDING_ 0x103

typedef struct {
    char name[16];
    SOCKET s;
    int open;
    struct sockaddr_in addr;   /* where it listens (listener) */
} Sock;

typedef struct {
    char name[16];
    OVERLAPPED ov;
    HANDLE ev;
    char *buf;
    char abuf[2 * (sizeof(struct sockaddr_in6) + 16)];
} Op;

static Sock g_socks[MAXN];
static Op *g_ops[MAXN];   /* on the heap: one the kernel still owns is never reused */
static int g_nsocks, g_nops;
static char g_scenario[64], g_line[256];
static int g_index;
static LPFN_ACCEPTEX g_accept;
static LPFN_CONNECTEX g_connect;

static Sock *sock_new(const char *name)
{
    Sock *k;
    if (g_nsocks == MAXN)
        die("too many sockets");
    k = &g_socks[g_nsocks++];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->open = 1;
    return k;
}

static Sock *sock_get(const char *name)
{
    int i;
    for (i = 0; i < g_nsocks; i++)
        if (!strcmp(g_socks[i].name, name))
            return &g_socks[i];
    printf("FAIL setup: no socket %s in %s\n", name, g_scenario);
    ExitProcess(2);
    return NULL;
}

static Op *op_get(const char *name)
{
    int i;
    Op *o;
    for (i = 0; i < g_nops; i++)
        if (!strcmp(g_ops[i]->name, name))
            return g_ops[i];
    if (g_nops == MAXN)
        die("too many ops");
    o = g_ops[g_nops++] = calloc(1, sizeof *o);
    if (!o)
        die("calloc");
    snprintf(o->name, sizeof o->name, "%s", name);
    if ((o->ev = WSACreateEvent()) == WSA_INVALID_EVENT)
        die("WSACreateEvent");
    return o;
}

/* The OVERLAPPED as every call gets it: zeroed, Internal marked, the op's event. */
static OVERLAPPED *op_arm(Op *o)
{
    memset(&o->ov, 0, sizeof o->ov);
    o->ov.Internal = UNTOUCHED;
    o->ov.hEvent = o->ev;
    return &o->ov;
}

static void row_start(void)
{
    printf("ROW %s %d %s |", g_scenario, g_index, g_line);
}

/* Internal once the op's event is seen: Wine signals the event a moment before it
 * writes Internal (Windows writes the status first), so give it that moment. */
static unsigned long long settled_internal(Op *o, int ev)
{
    int i;
    for (i = 0; ev && o->ov.Internal == STATUS_PENDING_ && i < 100; i++)
        Sleep(1);
    return (unsigned long long)o->ov.Internal;
}

static void row_call(int ret, int err, Op *o)
{
    int ev = is_signalled(o->ev);
    row_start();
    printf(" ret=%d err=%d ev=%d internal=0x%llx\n", ret, err, ev, settled_internal(o, ev));
}

static void listen_on(Sock *k, int backlog)
{
    int len = sizeof k->addr;
    loopback(&k->addr, 0);
    if (bind(k->s, (struct sockaddr *)&k->addr, sizeof k->addr) || listen(k->s, backlog)
        || getsockname(k->s, (struct sockaddr *)&k->addr, &len))
        die("listener");
}

static void closed_port(struct sockaddr_in *sa)
{
    SOCKET tmp = ovsock();
    int len = sizeof *sa;
    loopback(sa, 0);
    if (bind(tmp, (struct sockaddr *)sa, sizeof *sa) || getsockname(tmp, (struct sockaddr *)sa, &len))
        die("bind tmp");
    closesocket(tmp);   /* now nobody listens there */
}

static void step(char **w, int n)
{
    const char *v = w[0];
    if (!strcmp(v, "pair") && n == 3) {
        Sock *a = sock_new(w[1]), *b = sock_new(w[2]);
        tcp_pair(&a->s, &b->s);
    } else if (!strcmp(v, "listener") && (n == 2 || n == 3)) {
        Sock *k = sock_new(w[1]);
        k->s = ovsock();
        listen_on(k, n == 3 ? atoi(w[2]) : 16);
    } else if (!strcmp(v, "socket") && n == 2) {
        sock_new(w[1])->s = ovsock();
    } else if (!strcmp(v, "bind") && n == 2) {
        struct sockaddr_in sa;
        loopback(&sa, 0);
        if (bind(sock_get(w[1])->s, (struct sockaddr *)&sa, sizeof sa))
            die("bind");
    } else if (!strcmp(v, "queue_client") && n == 3) {
        Sock *l = sock_get(w[1]), *c = sock_new(w[2]);
        c->s = ovsock();
        if (connect(c->s, (struct sockaddr *)&l->addr, sizeof l->addr))
            die("queue_client connect");
    } else if (!strcmp(v, "nonblocking") && n == 2) {
        u_long one = 1;
        if (ioctlsocket(sock_get(w[1])->s, FIONBIO, &one))
            die("FIONBIO");
    } else if (!strcmp(v, "peer_send") && n == 3) {
        char buf[256];
        int len = atoi(w[2]);
        memset(buf, 'x', sizeof buf);
        if (len > (int)sizeof buf)
            die("peer_send: too long");
        send_all(sock_get(w[1])->s, buf, len);
    } else if (!strcmp(v, "readable") && n == 2) {
        if (!wait_readable(sock_get(w[1])->s, WAIT_MS))
            die("never readable");
    } else if (!strcmp(v, "shutdown_send") && n == 2) {
        shutdown(sock_get(w[1])->s, SD_SEND);
    } else if (!strcmp(v, "reset") && n == 2) {
        Sock *k = sock_get(w[1]);
        abortive_close(k->s);
        k->open = 0;
    } else if (!strcmp(v, "sleep") && n == 2) {
        Sleep(atoi(w[1]));
    } else if (!strcmp(v, "set_event") && n == 2) {
        WSASetEvent(op_get(w[1])->ev);
    } else if ((!strcmp(v, "recv") || !strcmp(v, "send")) && n == 4) {
        Sock *k = sock_get(w[1]);
        Op *o = op_get(w[2]);
        WSABUF wb;
        DWORD nb = 0, flags = 0;
        int rc, err;
        wb.len = (ULONG)strtoul(w[3], NULL, 10);
        free(o->buf);
        o->buf = malloc(wb.len ? wb.len : 1);
        if (!o->buf)
            die("malloc");
        memset(o->buf, 'x', wb.len);
        wb.buf = o->buf;
        op_arm(o);
        rc = v[0] == 'r' ? WSARecv(k->s, &wb, 1, &nb, &flags, &o->ov, NULL)
                         : WSASend(k->s, &wb, 1, &nb, 0, &o->ov, NULL);
        err = rc == 0 ? 0 : WSAGetLastError();
        row_call(rc, err, o);
    } else if (!strcmp(v, "acceptex") && n == 4) {
        Sock *l = sock_get(w[1]), *a = sock_get(w[2]);
        Op *o = op_get(w[3]);
        DWORD nb = 0;
        BOOL ok;
        op_arm(o);
        ok = g_accept(l->s, a->s, o->abuf, 0, sizeof(struct sockaddr_in6) + 16,
                      sizeof(struct sockaddr_in6) + 16, &nb, &o->ov);
        row_call(ok, ok ? 0 : WSAGetLastError(), o);
    } else if (!strcmp(v, "connectex") && n == 4) {
        Sock *k = sock_get(w[1]);
        Op *o = op_get(w[3]);
        struct sockaddr_in sa;
        BOOL ok;
        if (!strcmp(w[2], "closed"))
            closed_port(&sa);
        else
            sa = sock_get(w[2])->addr;
        op_arm(o);
        ok = g_connect(k->s, (struct sockaddr *)&sa, sizeof sa, NULL, 0, NULL, &o->ov);
        row_call(ok, ok ? 0 : WSAGetLastError(), o);
    } else if ((!strcmp(v, "quiet") || !strcmp(v, "wait")) && n == 2) {
        Op *o = op_get(w[1]);
        int ev;
        if (v[0] == 'q') {
            Sleep(QUIET_MS);
            ev = is_signalled(o->ev);
        } else {
            ev = wait_signalled(o->ev, WAIT_MS);
        }
        row_start();
        printf(" ev=%d internal=0x%llx\n", ev, settled_internal(o, ev));
    } else if (!strcmp(v, "result") && n == 3) {
        Sock *k = sock_get(w[1]);
        Op *o = op_get(w[2]);
        DWORD nb = 0, flags = 0;
        BOOL ok = WSAGetOverlappedResult(k->s, &o->ov, &nb, FALSE, &flags);
        row_start();
        printf(" ret=%d err=%d n=%lu\n", ok, ok ? 0 : WSAGetLastError(), (unsigned long)nb);
    } else if (!strcmp(v, "cancel") && n == 3) {
        Sock *k = sock_get(w[1]);
        BOOL ok = CancelIoEx((HANDLE)k->s, strcmp(w[2], "all") ? &op_get(w[2])->ov : NULL);
        row_start();
        printf(" ret=%d err=%lu\n", ok, ok ? 0UL : (unsigned long)GetLastError());
    } else if (!strcmp(v, "close") && n == 2) {
        Sock *k = sock_get(w[1]);
        int rc = closesocket(k->s);
        k->open = 0;
        row_start();
        printf(" ret=%d err=%d\n", rc, rc ? WSAGetLastError() : 0);
    } else {
        printf("FAIL setup: cannot run '%s' in %s\n", g_line, g_scenario);
        ExitProcess(2);
    }
}

/* Close what is open and let the ops still in the kernel end. An op that does not
 * (Wine leaves some running after closesocket) keeps its memory and event forever:
 * freeing them under the kernel would be the very bug the table is about. */
static void scenario_end(void)
{
    int i;
    for (i = 0; i < g_nsocks; i++)
        if (g_socks[i].open)
            closesocket(g_socks[i].s);
    for (i = 0; i < g_nops; i++) {
        Op *o = g_ops[i];
        if (o->ov.Internal == STATUS_PENDING_ && !wait_signalled(o->ev, QUIET_MS))
            continue;   /* still the kernel's: leaked on purpose */
        WSACloseEvent(o->ev);
        free(o->buf);
        free(o);
    }
    g_nsocks = g_nops = 0;
    printf("END %s\n", g_scenario);
}

static void *ext_fn(SOCKET s, GUID guid)
{
    void *fn = NULL;
    DWORD n = 0;
    if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn, &n,
                 NULL, NULL))
        die("WSAIoctl");
    return fn;
}

int main(int argc, char **argv)
{
    GUID ga = WSAID_ACCEPTEX, gc = WSAID_CONNECTEX;
    char line[256];
    FILE *f;
    SOCKET tmp;
    start();
    if (argc != 2 || !(f = fopen(argv[1], "r")))
        die("usage: twin.exe SCRIPT");
    tmp = ovsock();
    g_accept = (LPFN_ACCEPTEX)ext_fn(tmp, ga);
    g_connect = (LPFN_CONNECTEX)ext_fn(tmp, gc);
    closesocket(tmp);
    while (fgets(line, sizeof line, f)) {
        char *w[8], *p;
        int n = 0;
        line[strcspn(line, "\r\n")] = 0;
        snprintf(g_line, sizeof g_line, "%s", line);
        for (p = strtok(line, " "); p && n < 8; p = strtok(NULL, " "))
            w[n++] = p;
        if (!n)
            continue;
        if (!strcmp(w[0], "scenario") && n == 2) {
            snprintf(g_scenario, sizeof g_scenario, "%s", w[1]);
            g_index = 0;
        } else if (!strcmp(w[0], "end")) {
            scenario_end();
        } else {
            step(w, n);
            g_index++;
        }
    }
    fclose(f);
    return finish();
}
