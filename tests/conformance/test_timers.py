"""Timers (sleep ops): never early, ordered, cancellable, no spinning. An op's
timeout= is in test_timeouts.py."""
from __future__ import annotations

import time

import pytest

from overlapio import OperationCancelled

from .harness import LIMIT, Driver


@pytest.mark.parametrize("seconds", [0, 0.0001, 0.0009, 0.001, 0.015, 0.1])
def test_timer_never_fires_early(px, seconds):
    drv = Driver(px)
    for _ in range(5):
        t0 = time.monotonic()  # read before submitting: the op's deadline is later still
        op = px.sleep(seconds)
        drv.wait_for(op)
        fired = time.monotonic()
        assert op.result is None
        assert fired - t0 >= seconds, f"sleep({seconds}) surfaced after {fired - t0:.6f} s"


def test_timers_fire_in_deadline_then_submission_order(px):
    drv = Driver(px)
    late = px.sleep(0.05, tag="late", callback=drv.cb)
    same = [px.sleep(0.02, tag=i, callback=drv.cb) for i in range(50)]
    zero = [px.sleep(0, tag=f"z{i}", callback=drv.cb) for i in range(20)]
    drv.wait_for(late, *same, *zero)
    assert drv.order == [*zero, *same, late], [op.tag for op in drv.order]


def test_equal_deadlines_fire_in_submission_order(px, monkeypatch):
    """Timers whose deadlines are exactly equal (a frozen clock makes them so)
    complete in submission order."""
    import overlapio.core.proactor as proactor_mod
    frozen = time.monotonic()
    monkeypatch.setattr(proactor_mod, "monotonic", lambda: frozen)
    drv = Driver(px)
    ops = [px.sleep(0, tag=i, callback=drv.cb) for i in range(100)]
    drv.wait_for(*ops)
    assert drv.order == ops


def test_cancelled_timer_completes_cancelled_once(px):
    drv = Driver(px)
    keep = px.sleep(0.05, callback=drv.cb)
    gone = px.sleep(0.01, callback=drv.cb)
    assert px.cancel(gone) is True
    assert px.cancel(gone) is False  # already done (not yet surfaced): a no-op
    drv.wait_for(keep, gone)
    drv.pump(0.05)
    drv.assert_once([keep, gone])
    assert isinstance(gone.exception, OperationCancelled)
    assert keep.exception is None
    assert drv.order == [gone, keep]


def test_sub_millisecond_timers_do_not_spin(px):
    """300 chained sleeps of 0.5 ms. A loop that sleeps burns a small fraction of
    the wall time in CPU; one that spins until the deadline burns nearly all of it.
    Bound: CPU < 50 % of wall time (a sleeping loop measures well under 20 % here),
    and few polls per timer (a spinner polls hundreds of times per timer)."""
    backend = px._backend
    polls = {"n": 0}
    real_poll = backend.poll

    def counting_poll(timeout):
        polls["n"] += 1
        return real_poll(timeout)

    backend.poll = counting_poll
    n = 300
    c0, t0 = time.process_time(), time.monotonic()
    for _ in range(n):
        op = px.sleep(0.0005)
        while not op.done:
            px.wait(LIMIT)
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    backend.poll = real_poll
    assert wall >= n * 0.0005
    assert polls["n"] <= n * 4, f"{polls['n']} polls for {n} sub-millisecond timers: spinning"
    assert cpu < 0.5 * wall, f"{cpu:.3f} s CPU in {wall:.3f} s of sub-millisecond timers: spinning"


def test_wait_timeout_returns_empty_and_not_early(px):
    for timeout in (0, 0.0005, 0.05):
        t0 = time.monotonic()
        assert px.wait(timeout) == []
        assert time.monotonic() - t0 >= timeout

