/* Event-wait facts: the backend waits on at most WSA_MAXIMUM_WAIT_EVENTS (64) events
 * per WSAWaitForMultipleEvents call, reads the lowest signalled index, and is woken
 * from another thread by WSASetEvent on its wakeup event (post()/wakeup()). */
#include "common.h"

#define N 65

static HANDLE g_wake;

static DWORD WINAPI setter_thread(LPVOID arg)
{
    (void)arg;
    Sleep(100);
    WSASetEvent(g_wake);
    return 0;
}

int main(void)
{
    HANDLE ev[N];
    DWORD r;
    int i, err;
    start();
    for (i = 0; i < N; i++)
        if ((ev[i] = WSACreateEvent()) == WSA_INVALID_EVENT)
            die("WSACreateEvent");

    /* 64 events, two signalled: the lowest index wins */
    WSASetEvent(ev[40]);
    WSASetEvent(ev[10]);
    r = WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, ev, FALSE, WAIT_MS, FALSE);
    CHECK("wait_64_events_lowest_signalled_index", r == WSA_WAIT_EVENT_0 + 10,
          "returned %lu", (unsigned long)r);
    /* WSACreateEvent makes manual-reset events: the wait does not consume the signal,
     * the backend resets (or re-arms through a new op) itself */
    r = WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, ev, FALSE, 0, FALSE);
    CHECK("wsa_events_are_manual_reset", r == WSA_WAIT_EVENT_0 + 10,
          "second wait returned %lu", (unsigned long)r);
    WSAResetEvent(ev[10]);
    r = WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, ev, FALSE, 0, FALSE);
    CHECK("wait_after_reset_sees_next_index", r == WSA_WAIT_EVENT_0 + 40,
          "returned %lu", (unsigned long)r);
    WSAResetEvent(ev[40]);
    {
        DWORD t0 = GetTickCount();
        r = WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, ev, FALSE, 50, FALSE);
        CHECK("wait_64_events_timeout_258", r == WSA_WAIT_TIMEOUT,
              "returned %lu after %lu ms", (unsigned long)r,
              (unsigned long)(GetTickCount() - t0));
    }

    /* 65 events: refused outright, so the backend must shard its waits */
    WSASetEvent(ev[0]);
    r = WSAWaitForMultipleEvents(N, ev, FALSE, 0, FALSE);
    err = WSAGetLastError();
    CHECK("wait_65_events_fails_87", r == WSA_WAIT_FAILED && err == WSA_INVALID_PARAMETER,
          "returned 0x%lx WSAGetLastError=%d", (unsigned long)r, err);
    WSAResetEvent(ev[0]);

    /* cross-thread wakeup: WSASetEvent from another thread ends a blocked wait */
    g_wake = ev[5];
    {
        DWORD t0 = GetTickCount(), dt;
        HANDLE th = CreateThread(NULL, 0, setter_thread, NULL, 0, NULL);
        if (!th)
            die("CreateThread");
        r = WSAWaitForMultipleEvents(WSA_MAXIMUM_WAIT_EVENTS, ev, FALSE, WAIT_MS, FALSE);
        dt = GetTickCount() - t0;
        CHECK("wsasetevent_from_other_thread_wakes_wait",
              r == WSA_WAIT_EVENT_0 + 5 && dt < WAIT_MS,
              "returned %lu after %lu ms", (unsigned long)r, (unsigned long)dt);
        WaitForSingleObject(th, WAIT_MS);
        CloseHandle(th);
    }

    for (i = 0; i < N; i++)
        WSACloseEvent(ev[i]);
    return finish();
}
