"""Memory handed to the kernel stays alive until the kernel says it is done, on
every path: checked through the hardened stand-in (tests/windows/standin.py),
which holds the backend's memory only weakly and records every kernel access to
memory that was freed, and completes cancels and aborts late, on its own thread.
"""
from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from overlapio import Proactor
from overlapio.backends.winsock.api import lib
from overlapio.backends.winsock import ops as winsock_ops

from standin import StandInWinsockBackend, WineCloseStandInBackend
from test_standin import G0_OPS, collect, settle, socketpairs, standin

#: the stand-in plays Winsock over Linux sockets (/proc/self/fd, os.readv, select.poll)
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux only: the Winsock stand-in runs over Linux sockets")


def pump(px, cond, limit=10.0):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "completions lost"
        px.wait(0.05)


def scripted_delays(api, *delays):
    """The i-th cancel/abort the stand-in starts completes after ``delays[i]`` s."""
    it = iter(delays)
    api.completion_delay = lambda k: next(it, 0.0)


# -- a slot leaves the kernel only when its OVERLAPPED says done ---------------------------
@pytest.mark.parametrize("cls", [StandInWinsockBackend, WineCloseStandInBackend])
def test_a_closed_handle_does_not_release_a_pending_op(cls):
    """Two recvs pending on a socket closed behind the backend's back; the abort of
    the second arrives first. Reaping it reaps the first (submission order) while
    that one is still pending, and WSAGetOverlappedResult on the closed handle
    fails with WSAENOTSOCK: that must not release the first op's slot."""
    p = Proactor(backend=cls)
    api = standin(p)
    a, b = socketpairs(1)[0]
    try:
        in_kernel = []  # ops the stand-in still had pending when each one surfaced
        first = p.recv(a, bytearray(10), lambda op: in_kernel.append(api.pending_ops - 1))
        second = p.recv(a, bytearray(10), lambda op: in_kernel.append(api.pending_ops - 1))
        a.close()
        scripted_delays(api, 0.3, 0.0)
        p.cancel(second)  # the stand-in notices the dead SOCKET here and aborts both
        pump(p, lambda: first.done and second.done)
        assert in_kernel == [1, 0], "an op completed while the kernel still had it (its slot was released)"
        assert first.cancelled and second.cancelled
        assert api.violations == []
    finally:
        p.close()
        b.close()


# -- a backend dropped without close() ------------------------------------------------------
def _drop(how, a, started, extra=()):
    """Leave a Proactor with a recv pending on ``a`` and no close()."""
    if how == "raise":
        def use():
            p = Proactor(backend=StandInWinsockBackend)
            started.append(standin(p))
            p.recv(a, bytearray(10))
            raise RuntimeError("before close()")

        with pytest.raises(RuntimeError):
            use()
    else:
        p = Proactor(backend=StandInWinsockBackend)
        started.append(standin(p))
        p.recv(a, bytearray(10))
        if how == "garbage-with-helpers":  # helper threads must not keep it alive
            for x, _ in extra:
                p.recv(x, bytearray(10))
            assert p._backend._helpers
        del p


@pytest.mark.parametrize("how", ["garbage", "garbage-with-helpers", "raise"])
def test_a_proactor_dropped_without_close_keeps_kernel_memory_valid(how):
    """The recv's buffer and OVERLAPPED die with the backend; the kernel must be
    done with them first (cancel, wait), or data arriving later is written into
    freed memory."""
    a, b = socketpairs(1)[0]
    extra = socketpairs(G0_OPS + 5)
    started = []
    try:
        _drop(how, a, started, extra)
        api = started[0]
        gc.collect()
        assert not [t for t in threading.enumerate() if t.name.startswith("overlapio-wait-")]
        b.send(b"late data")  # a recv still pending in the kernel would take it now
        time.sleep(0.1)
        api.dispose()
        assert api.freed_writes == 0, api.violations
        assert api.violations == [] and api.leaks == []
        assert api.pending_ops == 0
    finally:
        a.close()
        b.close()
        for x, y in extra:
            x.close()
            y.close()


_AT_EXIT = r"""
import atexit, socket, sys
state = {}

def check():  # registered first, so it runs after every exit hook registered later
    api = state["api"]
    api.dispose()
    print("pending in the kernel at exit:", api.pending_ops, "violations:", api.violations, flush=True)

atexit.register(check)
sys.path[:0] = sys.argv[1:]
from overlapio import Proactor
from standin import StandInWinsockBackend

a, b = socket.socketpair()
state["socks"] = (a, b)  # stay open: only the backend's exit hook can end the recv
p = Proactor(backend=StandInWinsockBackend)
state["api"] = p._backend.api
p.recv(a, bytearray(10))
# the interpreter exits without p.close()
"""


def test_interpreter_exit_without_close_leaves_nothing_in_the_kernel():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _AT_EXIT, here], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pending in the kernel at exit: 0 violations: []" in out.stdout, out.stdout + out.stderr


# -- an exception between the overlapped call and the op's registration --------------------
def count_completions(px):
    """{id(op): times completed} for every op, and the list of ops the backend was
    given (also those whose submit call raised before returning the op)."""
    backend = px._backend
    done, given = Counter(), []
    complete = backend._complete

    def counting(op, value, error):
        done[id(op)] += 1
        complete(op, value, error)

    backend._complete = counting
    for name in ("accept", "recv", "send", "readable"):
        def record(op, _real=getattr(backend, name)):
            given.append(op)
            return _real(op)
        setattr(backend, name, record)

    def record_connect(op, address, _real=backend.connect):
        given.append(op)
        return _real(op, address)

    backend.connect = record_connect
    return done, given


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
@pytest.mark.parametrize("call", ["WSARecv", "WSAGetLastError"])
def test_an_exception_at_the_overlapped_calls_return_does_not_orphan_the_op(call, exc):
    """The recv is in the kernel when the exception surfaces: close() must still
    cancel it, wait for the kernel, and complete it once."""
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    done, given = count_completions(p)
    a, b = socketpairs(1)[0]
    try:
        api.inject(1, exc, only=call)
        with pytest.raises(exc):
            p.recv(a, bytearray(10))
        api.stop_injecting()
        p.close()
        assert [done[id(op)] for op in given] == [1], "the op did not complete exactly once"
        assert given[0].cancelled
        assert api.leaks == []
    finally:
        p.close()
        a.close()
        b.close()


# -- the helper groups: a lost report, a dead helper ----------------------------------------
def test_an_exception_while_draining_a_helper_report_loses_no_completion():
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    pairs = socketpairs(G0_OPS + 5)
    try:
        ops = [p.recv(a, bytearray(4)) for a, _ in pairs]
        helped = ops[G0_OPS:]
        assert all(op._bk.group is not p._backend._g0 for op in helped)
        for _, b in pairs[G0_OPS:]:
            b.send(b"hi")
        settle(api, pending=1 + G0_OPS)
        api.inject(1, KeyboardInterrupt, only="WSAGetOverlappedResult")
        with pytest.raises(KeyboardInterrupt):
            while True:
                p.wait()
        api.stop_injecting()
        got = [op for op in collect(p, [op for op in helped if not op.done])]
        assert all(op.result == 2 for op in helped), got
    finally:
        p.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_a_helper_thread_that_dies_is_reported_and_its_group_keeps_working():
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    pairs = socketpairs(G0_OPS + 2)
    real_wait = api.WSAWaitForMultipleEvents
    died = []

    def wait(*args):
        if threading.current_thread().name.startswith("overlapio-wait-") and not died:
            died.append(1)
            raise MemoryError("in a helper thread")
        return real_wait(*args)

    try:
        api.WSAWaitForMultipleEvents = wait
        ops = [p.recv(a, bytearray(4)) for a, _ in pairs[:G0_OPS + 1]]  # the last one starts a helper
        with pytest.raises(MemoryError):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                p.wait(0.05)
        ops.append(p.recv(pairs[-1][0], bytearray(4)))  # lands in the helper group
        for _, b in pairs:
            b.send(b"ok")
        collect(p, ops)
        assert all(op.result == 2 for op in ops)
    finally:
        p.close()
        for a, b in pairs:
            a.close()
            b.close()


# -- accept, cancelled while its client reset ------------------------------------------------
def test_a_cancelled_accept_whose_client_reset_completes_cancelled():
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    listener = p.listen(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    try:
        time.sleep(0.05)
        api.fail_next_accepts[:] = [lib.WSAECONNRESET]
        acc = p.accept(listener)  # fails in the kernel at once (its event is set)
        assert p.cancel(acc)  # too late to cancel: its real outcome is a reset client
        collect(p, [acc])
        assert acc.cancelled, acc.exception
    finally:
        p.close()
        client.close()


# -- sends larger than one WSABUF ------------------------------------------------------------
def test_a_send_larger_than_one_wsabuf_is_one_wsasend(monkeypatch):
    monkeypatch.setattr(winsock_ops, "MAX_CHUNK", 1000)  # a WSABUF's limit, scaled down
    p = Proactor(backend=StandInWinsockBackend)
    a, b = socketpairs(1)[0]
    got = bytearray()
    try:
        data = os.urandom(5500)
        ops = [p.send(a, data), p.send(a, b"tail")]
        collect(p, ops)
        assert [op.result for op in ops] == [5500, 4], [op.exception for op in ops]
        b.settimeout(5)
        while len(got) < 5504:
            got += b.recv(65536)
        assert bytes(got) == data + b"tail"
    finally:
        p.close()
        a.close()
        b.close()


# -- the signal wakeup fd --------------------------------------------------------------------
def test_blocking_waits_do_not_reinstall_the_wakeup_fd(monkeypatch):
    calls = []
    real = signal.set_wakeup_fd

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(signal, "set_wakeup_fd", spy)

    def twenty_blocking_waits():
        p = Proactor(backend=StandInWinsockBackend)
        try:
            for _ in range(20):
                p.sleep(0.001)
                p.wait()
        finally:
            p.close()

    twenty_blocking_waits()
    assert len(calls) <= 2, f"set_wakeup_fd called {len(calls)} times for 20 waits"
    calls.clear()
    t = threading.Thread(target=twenty_blocking_waits)
    t.start()
    t.join()
    assert calls == [], "set_wakeup_fd called off the main thread (where it raises)"


def test_proactors_closed_in_any_order_put_the_wakeup_fd_back():
    """Two Proactors block in turn on the main thread (the second's wakeup fd goes
    over the first's); whichever closes first, neither close() fails, and at the end
    the wakeup fd is what it was before either."""
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    for first_closed in (0, 1):
        pxs = [Proactor(backend=StandInWinsockBackend) for _ in range(2)]
        for p in pxs:
            p.sleep(0.001)
            p.wait()
        pxs[first_closed].close()
        pxs[1 - first_closed].close()
        now = signal.set_wakeup_fd(before)
        assert now == before, f"wakeup fd {now} left installed after closing in order {first_closed}"
