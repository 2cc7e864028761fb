"""Memory handed to the kernel stays alive until the kernel says it is done, on
every path: checked through the hardened stand-in (tests/windows/standin.py),
which holds the backend's memory only weakly and records every kernel access to
memory that was freed, and completes cancels and aborts late, on its own thread.
"""
from __future__ import annotations

import gc
import socket
import time

import pytest

from overlapio import Proactor

from standin import StandInWinsockBackend, WineCloseStandInBackend
from test_standin import collect, socketpairs, standin


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
