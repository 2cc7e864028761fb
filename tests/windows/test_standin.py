"""The Windows backend's logic, driven through the scripted stand-in of the
Winsock library (tests/windows/standin.py) on Linux.

What this proves, and what it cannot: the backend's bookkeeping -- groups of at
most 64 events, helper threads, sweeping, the slot/event pool, buffer and
OVERLAPPED lifetimes, cancel/close ordering, accept re-arming, short-send
resubmission, Ctrl-C -- against behaviours pinned by the contract programs under
Wine. It does not prove that real Windows behaves like the stand-in; the
contract programs (test_contracts.py) and a real Windows CI run do that.

The whole conformance suite runs against the same class with::

    PYTHONPATH=... python -m pytest tests/conformance \\
        --backend-class tests.windows.standin:StandInWinsockBackend
"""
from __future__ import annotations

import gc
import math
import os
import random
import signal
import socket
import sys
import threading
import time

import pytest

import overlapio
from overlapio import Proactor
from overlapio.backends.winsock import WinsockBackend

from standin import StandInWinsockBackend, WineCloseStandInBackend

#: the stand-in plays Winsock over Linux sockets (/proc/self/fd, os.readv, select.poll)
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux only: the Winsock stand-in runs over Linux sockets")

LIMIT = 20.0
G0_OPS = 62  # group 0: wake event + signal-wakeup recv + 62 op events
HELPER_OPS = 63


def fds():
    return {(int(n), os.readlink(f"/proc/self/fd/{n}")) for n in os.listdir("/proc/self/fd")
            if _exists(n)}


def _exists(n):
    try:
        os.readlink(f"/proc/self/fd/{n}")
        return True
    except OSError:
        return False


@pytest.fixture
def px():
    gc.collect()
    before = fds()
    p = Proactor(backend=StandInWinsockBackend)
    api = p._backend.api
    yield p
    p.close()
    assert api.violations == [], api.violations
    assert api.leaks == [], api.leaks
    assert api.live_events == 0, "close() left event objects open"
    gc.collect()
    leaked = sorted(fds() - before)
    assert not leaked, f"descriptors left open: {leaked}"


def standin(px):
    return px._backend.api


def helper_threads():
    return [t for t in threading.enumerate() if t.name.startswith("overlapio-wait-")]


_WATCHDOG = object()


def collect(px, ops, limit=LIMIT):
    """Pump until every op is done; returns the ops in the order they surfaced.

    Waits without a timeout (a finite one would count as polling in the stand-in's
    counters); a watchdog thread posts after ``limit`` seconds so that a lost
    completion fails the test instead of hanging it."""
    want = set(map(id, ops))
    seen = []
    dog = threading.Timer(limit, lambda: px.post(_WATCHDOG, tag=_WATCHDOG))
    dog.start()
    try:
        while len(seen) < len(ops):
            for op in px.wait():
                assert op.tag is not _WATCHDOG, f"{len(ops) - len(seen)} completions lost"
                assert id(op) in want, op
                seen.append(op)
    finally:
        dog.cancel()
        dog.join()
    assert len(set(map(id, seen))) == len(seen), "an op surfaced twice"
    return seen


def socketpairs(n):
    out = []
    for _ in range(n):
        a, b = socket.socketpair()
        a.setblocking(False)
        out.append((a, b))
    return out


def settle(api, pending=1, limit=5.0):
    """Wait until the stand-in kernel has finished all but ``pending`` ops (the
    signal-wakeup recv is always pending)."""
    deadline = time.monotonic() + limit
    while api.pending_ops > pending:
        assert time.monotonic() < deadline, f"{api.pending_ops} ops still pending in the stand-in"
        time.sleep(0.005)


def assert_no_polling(api):
    assert api.wait_timeouts == 0, "a blocking wait timed out: something polls"
    assert api.finite_waits_while_pending == 0, "a wait with a finite timeout while ops were pending"
    assert api.max_events <= 64


# -- availability -----------------------------------------------------------------------
def test_unavailable_here_with_a_one_line_reason():
    reason = WinsockBackend.unavailable_reason()
    assert reason and "\n" not in reason and "Windows" in reason and "posix" in reason
    ok, why = overlapio.available_backends()["winsock"]
    assert not ok and why == reason
    assert StandInWinsockBackend.unavailable_reason() is None


# -- past 64 events -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [G0_OPS, G0_OPS + 1, G0_OPS + HELPER_OPS + 1, G0_OPS + 3 * HELPER_OPS + 5])
@pytest.mark.parametrize("order", ["forward", "reverse", "random"])
def test_many_pending_recvs_across_helper_groups(px, n, order):
    api = standin(px)
    pairs = socketpairs(n)
    try:
        ops = [px.recv(a, bytearray(16), tag=i) for i, (a, _) in enumerate(pairs)]
        idx = list(range(n))
        if order == "reverse":
            idx.reverse()
        elif order == "random":
            random.Random(n).shuffle(idx)
        for i in idx:
            pairs[i][1].send(b"%d" % i)
        collect(px, ops)
        for i, op in enumerate(ops):
            assert bytes(op.buf[:op.result]) == b"%d" % i
        assert len(px._backend._helpers) == math.ceil(max(0, n - G0_OPS) / HELPER_OPS)
        assert_no_polling(api)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_10000_pending_recvs_complete_in_reverse_order_without_polling(px):
    """10,000 UDP sockets on the backend side (real descriptors; ulimit -n is
    20000, so no TCP peers), one recv pending on each; one plain sender delivers
    a datagram to each, last socket first."""
    api = standin(px)
    n = 10_000
    socks = []
    try:
        for _ in range(n):
            s = px.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ops = [px.recv(s, bytearray(8)) for s in socks]
        assert len(px._backend._helpers) == math.ceil((n - G0_OPS) / HELPER_OPS)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i in reversed(range(n)):
                sender.sendto(i.to_bytes(4, "little"), socks[i].getsockname())
            t0 = time.monotonic()
            collect(px, ops, limit=120)
            elapsed = time.monotonic() - t0
        finally:
            sender.close()
        for i, op in enumerate(ops):
            assert int.from_bytes(op.buf[:op.result], "little") == i
        assert_no_polling(api)
        print(f"10,000 completions in {elapsed:.2f} s, {api.wait_calls} waits "
              f"({api.zero_timeout_calls} zero-timeout sweeps), {len(px._backend._helpers)} helpers")
        # the slot pool: a second round creates no event
        created = api.events_created
        ops = [px.recv(s, bytearray(8)) for s in socks[:500]]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for s in socks[:500]:
                sender.sendto(b"x", s.getsockname())
        finally:
            sender.close()
        collect(px, ops)
        assert api.events_created == created
    finally:
        for s in socks:
            s.close()


def test_sweep_reaps_every_signalled_event_in_one_poll(px):
    api = standin(px)
    pairs = socketpairs(40)
    try:
        ops = [px.recv(a, bytearray(4)) for a, _ in pairs]
        for _, b in reversed(pairs):
            b.send(b"hi")
        settle(api)
        got = px.wait(0)  # one poll
        assert len(got) == 40, "the sweep left signalled events for later (lowest-index starvation)"
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_busy_socket_does_not_starve_the_others(px):
    """Socket 0 always has data; 100 others get data once. All of them complete
    while socket 0 keeps being re-armed (group 0 and the helper groups)."""
    pairs = socketpairs(101)
    try:
        hot_a, hot_b = pairs[0]
        hot_b.send(b"x" * 100000)
        hot_count = 0
        others = [px.recv(a, bytearray(4)) for a, _ in pairs[1:]]

        def again(op):
            nonlocal hot_count
            hot_count += 1
            if hot_count < 100000:
                px.recv(hot_a, bytearray(1), callback=again)

        px.recv(hot_a, bytearray(1), callback=again)
        for _, b in pairs[1:]:
            b.send(b"ok")
        collect(px, others)
        assert hot_count < 100000, "the others completed only after the hot socket ran dry"
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# -- close ------------------------------------------------------------------------------------
def test_close_with_pending_ops_cancels_all_releases_events_and_joins_helpers():
    gc.collect()
    before_threads = set(helper_threads())
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    pairs = socketpairs(300)
    try:
        seen = []
        ops = [p.recv(a, bytearray(10), callback=seen.append) for a, _ in pairs]
        ops += [p.recv(a, bytearray(10)) for a, _ in pairs[:50]]  # two on some sockets
        p.wait(0.05)
        assert len(p._backend._helpers) >= 4
        p.close()
        assert all(op.done and op.cancelled for op in ops)
        assert len(seen) == 300
        assert set(helper_threads()) <= before_threads, "close() left helper threads running"
        assert api.live_events == 0
        assert api.pending_ops == 0
        assert api.violations == [] and api.leaks == []
        # the sockets are still usable (not the Proactor's): nothing was lost
        pairs[0][1].send(b"after")
        assert pairs[0][0].recv(10) == b"after"
    finally:
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.parametrize("cls", [StandInWinsockBackend, WineCloseStandInBackend])
def test_close_socket_with_pending_ops_in_helper_groups(cls):
    p = Proactor(backend=cls)
    api = standin(p)
    pairs = socketpairs(150)
    try:
        ops = [p.recv(a, bytearray(10)) for a, _ in pairs]
        doomed = [p.recv(pairs[-1][0], bytearray(10)) for _ in range(3)]
        p.close(pairs[-1][0])  # its ops live in the last helper group
        assert pairs[-1][1].recv(10) == b"", "the peer did not see an orderly close"
        got = collect(p, doomed + [ops[-1]])
        assert all(op.cancelled for op in got)
        for _, b in pairs[:-1]:
            b.send(b"z")
        collect(p, ops[:-1])
        assert all(op.result == 1 for op in ops[:-1])
        assert api.violations == []
    finally:
        p.close()
        for a, b in pairs:
            a.close()
            b.close()


@pytest.mark.parametrize("cls", [StandInWinsockBackend, WineCloseStandInBackend])
def test_socket_closed_behind_our_back_completes_cancelled(cls):
    p = Proactor(backend=cls)
    a, b = socketpairs(1)[0]
    try:
        op = p.recv(a, bytearray(10))
        a.close()
        p.cancel(op)  # the stand-in notices the dead SOCKET here (6, and the op aborted)
        collect(p, [op])
        assert op.cancelled
    finally:
        p.close()
        b.close()


# -- cancel -----------------------------------------------------------------------------------
def test_cancel_pending_recv(px):
    api = standin(px)
    a, b = socketpairs(1)[0]
    try:
        op = px.recv(a, bytearray(10))
        assert px.cancel(op)
        collect(px, [op])
        assert op.cancelled and op.nbytes == 0
        b.send(b"still")
        assert a.recv(10) == b"still", "the cancel lost data"
        assert api.cancel_calls == 1 and api.cancel_not_found == 0
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("how", ["immediate", "kernel"])
def test_cancel_racing_completion_keeps_the_data(px, how):
    """The op finished before CancelIoEx (at once, or in the kernel before we
    looked): CancelIoEx says 1168 and the real result wins."""
    api = standin(px)
    a, b = socketpairs(1)[0]
    try:
        if how == "immediate":
            b.send(b"early")
            time.sleep(0.02)
            op = px.recv(a, bytearray(10))
            assert api.immediate >= 1
        else:
            op = px.recv(a, bytearray(10))
            b.send(b"early")
            settle(api)
        assert px.cancel(op) is True  # not surfaced yet: the Proactor asks the backend
        collect(px, [op])
        assert not op.cancelled and bytes(op.buf[:op.result]) == b"early"
        assert api.cancel_not_found == 1
        assert px.wait(0.05) == [], "a second completion"
    finally:
        a.close()
        b.close()


def test_immediate_completion_surfaces_exactly_once(px):
    api = standin(px)
    a, b = socketpairs(1)[0]
    try:
        b.send(b"now")
        time.sleep(0.02)
        ops = [px.recv(a, bytearray(3)), px.send(a, b"back")]
        assert api.immediate >= 2, "the stand-in did not complete them at once"
        assert all(not op.done for op in ops), "completed inside the submitting call"
        collect(px, ops)
        assert px.wait(0.1) == []
        assert ops[0].result == 3 and ops[1].result == 4
    finally:
        a.close()
        b.close()


# -- pooling ----------------------------------------------------------------------------------
def test_event_pool_reuse(px):
    api = standin(px)
    a, b = socketpairs(1)[0]
    try:
        def round_trip():
            r = px.recv(a, bytearray(4))
            s = px.send(b_sock, b"ping")
            collect(px, [r, s])

        b_sock = b
        b_sock.setblocking(False)
        for _ in range(5):
            round_trip()
        created = api.events_created
        for _ in range(500):
            round_trip()
        assert api.events_created == created, "an event object was created per op after warm-up"
    finally:
        a.close()
        b.close()


# -- sends ---------------------------------------------------------------------------------------
def test_short_send_count_is_resubmitted(px):
    api = standin(px)
    api.short_send_limit = 1000  # script a short count (Windows stream sockets never do this)
    a, b = socketpairs(1)[0]
    b.setblocking(False)
    got = bytearray()

    def pump_until(cond):
        deadline = time.monotonic() + LIMIT
        while not cond():
            assert time.monotonic() < deadline
            px.wait(0.005)
            try:
                got.extend(b.recv(65536))
            except BlockingIOError:
                pass

    try:
        data = os.urandom(100_000)
        s1 = px.send(a, data)
        pump_until(lambda: s1.done)
        s2 = px.send(a, b"tail")
        pump_until(lambda: s2.done and len(got) == len(data) + 4)
        assert s1.result == len(data) and s2.result == 4
        assert bytes(got) == data + b"tail"
    finally:
        a.close()
        b.close()


def test_short_send_count_with_a_later_send_in_flight_fails_instead_of_interleaving(px):
    api = standin(px)
    api.short_send_limit = 1000
    a, b = socketpairs(1)[0]
    try:
        s1, s2 = px.send(a, os.urandom(100_000)), px.send(a, b"tail")
        collect(px, [s1, s2])
        assert isinstance(s1.exception, ConnectionResetError) and s1.nbytes == 1000
        assert s2.result == 4
    finally:
        a.close()
        b.close()


# -- accept / connect ----------------------------------------------------------------------------
@pytest.mark.parametrize("codes", [[64], [10054, 64, 10054]])
def test_accept_rearmed_after_the_client_reset_before_accept(px, codes):
    api = standin(px)
    listener = px.listen(("127.0.0.1", 0))
    clients = [socket.create_connection(listener.getsockname()) for _ in range(len(codes) + 1)]
    try:
        time.sleep(0.05)
        api.fail_next_accepts[:] = codes
        acc = px.accept(listener)
        collect(px, [acc])
        conn, peer = acc.result
        assert api.accept_failures == len(codes)
        assert peer == clients[-1].getsockname()
        assert api.accept_ctx_updates == 1
        clients[-1].send(b"me")
        r = px.recv(conn, bytearray(2))
        collect(px, [r])
        assert bytes(r.buf) == b"me"
    finally:
        for c in clients:
            c.close()


def test_connect_binds_first_and_updates_the_context(px):
    api = standin(px)
    listener = px.listen(("127.0.0.1", 0))
    ops = [px.connect(listener.getsockname()) for _ in range(3)] + [px.accept(listener) for _ in range(3)]
    collect(px, ops)
    assert api.connect_ctx_updates == 3 and api.accept_ctx_updates == 3
    assert api.ioctl_calls == 3, "the extension functions were fetched more than once"
    holder = px.socket()
    holder.bind(("127.0.0.1", 0))
    refused = px.connect(holder.getsockname())
    collect(px, [refused])
    assert isinstance(refused.exception, ConnectionRefusedError)


# -- Ctrl-C -----------------------------------------------------------------------------------------
class _NoSignalWakeup(StandInWinsockBackend):
    _SIGNAL_WAKEUP = False


@pytest.mark.parametrize("cls, prompt", [(StandInWinsockBackend, True), (_NoSignalWakeup, False)])
def test_sigint_interrupts_a_blocked_poll_only_through_the_wakeup_socket(cls, prompt):
    """With the wakeup socket, SIGINT ends a blocked wait at once. Without it (the
    control), the stand-in's wait -- like a C call -- only returns at the next
    event (a post 1.5 s later): so the test does measure the mechanism."""
    px = Proactor(backend=cls)

    def raising(signum, frame):  # (Python's default handler would give way to the Proactor's, which defers)
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGINT, raising)
    main = threading.main_thread().ident
    fire = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    rescue = threading.Timer(1.5, px.post, ("rescue",))
    try:
        pending = px.sleep(60)
        t0 = time.monotonic()
        fire.start()
        rescue.start()
        with pytest.raises(KeyboardInterrupt):
            px.wait()
            px.wait()
        elapsed = time.monotonic() - t0
        if prompt:
            assert elapsed < 1.0, f"KeyboardInterrupt took {elapsed:.2f} s"
        else:
            assert elapsed >= 1.4, f"the control was interrupted after {elapsed:.2f} s without a wakeup socket"
        rescue.join()
        px.post("after")
        got = [op.result for op in px.wait(5) if op.tag is None]
        assert "after" in got or "rescue" in got
        assert standin(px).deferred_signals == 1
        assert px.cancel(pending)
    finally:
        fire.cancel()
        rescue.cancel()
        signal.signal(signal.SIGINT, old)
        px.close()
