"""Fault injection: an exception at the return of every Winsock call, one run each.

For each small scenario and each N, the stand-in raises KeyboardInterrupt (and,
in a second sweep, MemoryError) at the return of the N-th API call the backend
makes, the scenario's closing Proactor.close() included -- the call itself
happened, only its result is lost, as when Ctrl-C lands right after a cffi call
returns. N runs from 1 until a run in which the fault no
longer fires (the scenario made fewer calls). After each run ``close()`` must
complete every op the backend was given exactly once, the kernel must never
have touched freed memory, and no event, op, socket or thread may be left.
"""
from __future__ import annotations

import socket
import sys
import time

import pytest

from overlapio import Proactor

from standin import StandInWinsockBackend
from test_memory import count_completions
from test_standin import G0_OPS, fds, helper_threads, standin

#: the stand-in plays Winsock over Linux sockets (/proc/self/fd, os.readv, select.poll)
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux only: the Winsock stand-in runs over Linux sockets")


def pump(px, ops, limit=5.0):
    deadline = time.monotonic() + limit
    while not all(op.done for op in ops):
        assert time.monotonic() < deadline, "completions lost"
        px.wait(0.05)


class Env:
    """Plain sockets a scenario makes (closed after the run)."""

    def __init__(self):
        self.socks = []

    def add(self, *socks):
        self.socks.extend(socks)
        return socks[0] if len(socks) == 1 else socks

    def pair(self):
        a, b = self.add(*socket.socketpair())
        a.setblocking(False)
        return a, b

    def close(self):
        for s in self.socks:
            s.close()


# -- the scenarios: (px, env, arm); arm() starts the injection -------------------------------
def accept(px, env, arm):
    listener = px.listen(("127.0.0.1", 0))
    env.add(socket.create_connection(listener.getsockname()))
    arm()
    op = px.accept(listener)
    pump(px, [op])


def connect(px, env, arm):
    server = env.add(socket.socket())
    server.bind(("127.0.0.1", 0))
    server.listen()
    arm()
    op = px.connect(server.getsockname())
    pump(px, [op])


def recv(px, env, arm):
    a, b = env.pair()
    arm()
    op = px.recv(a, bytearray(8))
    b.send(b"hello")
    pump(px, [op])


def readable(px, env, arm):
    a, b = env.pair()
    arm()
    ops = [px.readable(a), px.readable(a)]  # zero-byte WSARecvs
    b.send(b"hello")
    pump(px, ops)
    ops += [px.readable(a), px.readable(a)]  # the data is unread: they complete too
    px.cancel(ops[-1])
    pump(px, ops)


def send(px, env, arm):
    a, b = env.pair()
    arm()
    op = px.send(a, b"x" * 50_000)
    pump(px, [op])


def cancel(px, env, arm):
    a, _ = env.pair()
    arm()
    op = px.recv(a, bytearray(8))
    px.cancel(op)
    pump(px, [op])


def close_with_pending_ops(px, env, arm):
    a, _ = env.pair()
    arm()
    px.recv(a, bytearray(8))
    px.send(a, b"y" * (4 << 20))  # more than the socket buffers take: pends
    px.close(a)


def over_64(px, env, arm):
    pairs = [env.pair() for _ in range(G0_OPS + 2)]
    for a, _ in pairs[:G0_OPS]:  # group 0 full, without faults
        px.recv(a, bytearray(4))
    arm()
    ops = [px.recv(a, bytearray(4)) for a, _ in pairs[G0_OPS:]]  # a helper group and its thread
    for _, b in pairs[G0_OPS:]:
        b.send(b"hi")
    pump(px, ops)


SCENARIOS = [accept, connect, recv, readable, send, cancel, close_with_pending_ops, over_64]


def run_once(scenario, n, exc):
    """One run with the fault at call ``n``; True if the fault fired."""
    before = fds()
    p = Proactor(backend=StandInWinsockBackend)
    api = standin(p)
    done, given = count_completions(p)
    env = Env()
    fired = False
    try:
        try:
            scenario(p, env, lambda: api.inject(n, exc))
        except exc:
            fired = True
        try:
            p.close()  # raises if the backend misused the API (a use after free included)
        except exc:  # the fault landed in close() itself: the next close() finishes it
            fired = True
            api.stop_injecting()
            p.close()
        api.stop_injecting()
        counts = [done[id(op)] for op in given]
        assert counts == [1] * len(given), f"ops not completed exactly once: {counts}"
        assert api.freed_writes == 0 and api.violations == [], api.violations
        assert api.leaks == [] and api.live_events == 0, api.leaks
        assert not helper_threads(), "a helper thread was left running"
    finally:
        p.close()
        env.close()
    left = sorted(fds() - before)
    assert not left, f"descriptors left open: {left}"
    return fired


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_an_exception_at_the_return_of_every_call(scenario, exc):
    n = 0
    while True:
        n += 1
        try:
            fired = run_once(scenario, n, exc)
        except AssertionError as e:
            raise AssertionError(f"{exc.__name__} at call {n} of {scenario.__name__}: {e}") from None
        if not fired:
            break
    assert n > 3, "the scenario made almost no calls"
    print(f"{scenario.__name__}: {n - 1} calls, each interrupted once")


def test_a_helper_thread_that_cannot_start_fails_only_the_op_that_needed_it(monkeypatch):
    import threading

    p = Proactor(backend=StandInWinsockBackend)
    done, given = count_completions(p)
    env = Env()
    real_start = threading.Thread.start

    def start(self):
        if self.name.startswith("overlapio-wait-"):
            raise RuntimeError("can't start new thread")
        return real_start(self)

    try:
        pairs = [env.pair() for _ in range(G0_OPS + 1)]
        ops = [p.recv(a, bytearray(4)) for a, _ in pairs[:G0_OPS]]
        monkeypatch.setattr(threading.Thread, "start", start)
        with pytest.raises(RuntimeError):
            p.recv(pairs[-1][0], bytearray(4))
        monkeypatch.undo()
        ops.append(p.recv(pairs[-1][0], bytearray(4)))  # now the helper starts
        for _, b in pairs:
            b.send(b"ok")
        pump(p, ops)
        assert all(op.result == 2 for op in ops)
        p.close()
        assert [done[id(op)] for op in given] == [1] * len(given)
    finally:
        p.close()
        env.close()
