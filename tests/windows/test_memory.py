"""Memory handed to the kernel stays alive until the kernel says it is done, on
every path: checked through the hardened stand-in (tests/windows/standin.py),
which holds the backend's memory only weakly and records every kernel access to
memory that was freed, and completes cancels and aborts late, on its own thread.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
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


# -- a backend dropped without close() ------------------------------------------------------
def _drop(how, a, started):
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
        del p


@pytest.mark.parametrize("how", ["garbage", "raise"])
def test_a_proactor_dropped_without_close_keeps_kernel_memory_valid(how):
    """The recv's buffer and OVERLAPPED die with the backend; the kernel must be
    done with them first (cancel, wait), or data arriving later is written into
    freed memory."""
    a, b = socketpairs(1)[0]
    started = []
    try:
        _drop(how, a, started)
        api = started[0]
        gc.collect()
        b.send(b"late data")  # a recv still pending in the kernel would take it now
        time.sleep(0.1)
        api.dispose()
        assert api.freed_writes == 0, api.violations
        assert api.violations == [] and api.leaks == []
        assert api.pending_ops == 0
    finally:
        a.close()
        b.close()


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
