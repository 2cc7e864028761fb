"""An op's ``timeout=``: TimeoutError when the timer wins, the result when the op
does, and a timer that belongs to one submission only."""
from __future__ import annotations

import time

import pytest

from overlapio import OperationCancelled

from . import checks
from .harness import LOOPBACK, Driver, pair


def test_timeout_completes_the_op_with_timeout_error(backend):
    checks.check_timeout_completes_with_timeout_error(backend)


def test_stale_timer_trap_and_timeout_immunity(backend):
    checks.check_timeout_is_per_submission(backend)


def test_op_that_finishes_first_keeps_its_result(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    listener = px.listen(LOOPBACK)
    a.sendall(b"data")
    t0 = time.monotonic()
    r = px.recv(b, bytearray(4), drv.cb, timeout=0.5)  # (0.5 s: ample for loopback on a loaded machine)
    acc = px.accept(listener, drv.cb, timeout=0.5)
    con = px.connect(listener.getsockname(), drv.cb, timeout=0.5)
    s = px.send(a, b"more", drv.cb, timeout=0.5)
    drv.wait_for(r, acc, con, s)
    drv.wait_until(lambda: time.monotonic() - t0 > 0.6, what="time past every deadline")
    # nothing surfaced again, no result changed
    drv.assert_once([r, acc, con, s])
    assert (r.result, s.result) == (4, 4) and acc.exception is None and con.exception is None
    assert px.pending == 0


def test_cancel_before_the_timeout_is_a_cancel(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.recv(b, bytearray(4), drv.cb, timeout=0.05)
    assert px.cancel(r) is True
    drv.wait_for(r)
    drv.pump(0.1)
    drv.assert_once([r])
    assert type(r.exception) is OperationCancelled


def test_timeout_zero_and_resubmit_with_timeout(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.recv(b, bytearray(4), drv.cb, timeout=0)  # nothing to read: times out at the next step
    drv.wait_for(r)
    assert type(r.exception) is TimeoutError
    t0 = time.monotonic()
    drv.seen[r] = 0
    px.resubmit(r, timeout=0.05)
    drv.wait_for(r)
    assert type(r.exception) is TimeoutError and time.monotonic() - t0 >= 0.05
    drv.seen[r] = 0
    px.resubmit(r, timeout=5)
    a.sendall(b"late")
    drv.wait_for(r)
    assert r.result == 4 and r.buf == b"late"


@pytest.mark.parametrize("bad, exc, msg", [(-1, ValueError, "timeout needs seconds >= 0, not -1"),
                                           ("3", TypeError, "timeout needs a number of seconds, not '3'"),
                                           (float("nan"), TypeError, "timeout needs a number of seconds")])
def test_bad_timeouts_raise_at_once(px, bad, exc, msg):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    listener = px.listen(LOOPBACK)
    done = px.recv(b, bytearray(1), drv.cb)
    a.sendall(b"x")
    drv.wait_for(done)
    before = px.pending
    for submit in (lambda: px.recv(b, bytearray(1), timeout=bad), lambda: px.send(a, b"x", timeout=bad),
                   lambda: px.accept(listener, timeout=bad),
                   lambda: px.connect(listener.getsockname(), timeout=bad),
                   lambda: px.resubmit(done, timeout=bad)):
        with pytest.raises(exc, match=msg):
            submit()
        assert px.pending == before, "a refused submission left an op pending"
    assert done.result == 1, "a refused resubmit changed the op"
    px.resubmit(done)  # still resubmittable
    a.sendall(b"y")
    drv.seen[done] = 0
    drv.wait_for(done)
    assert done.result == 1
