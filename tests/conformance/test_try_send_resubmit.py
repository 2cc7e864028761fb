"""``try_send`` (send at once, no op) and ``resubmit`` (submit a finished op
again): the per-message fast path, on every backend."""
from __future__ import annotations

import array

import pytest

from overlapio import ProactorClosedError

from . import checks
from .harness import LOOPBACK, Driver, pair, recv_exactly, reset


def test_try_send_sends_at_once_and_keeps_the_order(backend):
    checks.check_try_send_keeps_order(backend)


def test_try_send_reports_a_broken_connection(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    reset(px, b)
    # The first send after a reset may still be taken by the stack; a later one fails.
    with pytest.raises(ConnectionResetError):
        for _ in range(100):
            px.try_send(a, b"x" * 1000)
            drv.pump(0.01)
    assert px.pending == 0


def test_try_send_refuses_bad_arguments(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    with pytest.raises(TypeError, match="bytes-like.*str"):
        px.try_send(a, "text")
    with pytest.raises(TypeError, match="contiguous"):
        px.try_send(a, memoryview(b"0123456789")[::2])
    with pytest.raises(TypeError, match="socket.socket.*int"):
        px.try_send(a.fileno(), b"x")
    closed = px.socket()
    closed.close()
    with pytest.raises(ValueError, match="socket is closed"):
        px.try_send(closed, b"x")
    with pytest.raises(ValueError, match="socket is closed"):
        px.try_send(closed, array.array("B", b"abc"))  # (converted to bytes before the OS call)
    assert px.try_send(a, b"") == 0
    # any bytes-like object; the count is in bytes
    assert px.try_send(a, memoryview(bytearray(b"ok"))) == 2
    assert px.try_send(a, array.array("i", [1, 2])) == 8
    assert px.try_send(a, memoryview(bytearray(b"2-dim!")).cast("B", (2, 3))) == 6
    assert recv_exactly(px, b, 16, drv) == b"ok" + array.array("i", [1, 2]).tobytes() + b"2-dim!"


def test_resubmit_keeps_the_stream(backend):
    checks.check_resubmit_keeps_the_stream(backend)


def test_resubmit_in_pull_mode_and_cancel(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.recv(b, bytearray(10))
    drv.wait_for(px.send(a, b"first"), r)
    assert r.result == 5
    px.resubmit(r)
    assert px.pending == 1 and not r.done
    assert px.cancel(r) is True
    drv.seen[r] = 0  # (the Driver counts surfacings per op; this op surfaces again)
    drv.wait_for(r)
    assert r.cancelled and r.nbytes == 0
    px.resubmit(r)  # a cancelled op may go again too
    drv.seen[r] = 0
    drv.wait_for(px.send(a, b"second"), r)
    assert bytes(r.buf[:r.result]) == b"second"
    drv.pump(0.05)
    assert drv.seen[r] == 1


def test_resubmit_refuses_what_it_cannot_do(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    pending = px.recv(b, bytearray(10))
    with pytest.raises(RuntimeError, match="still pending"):
        px.resubmit(pending)
    empty = px.recv(b, bytearray(0))  # done at once (an empty buffer), but it has not surfaced yet
    assert empty.done
    with pytest.raises(RuntimeError, match="not surfaced"):
        px.resubmit(empty)
    sent = px.send(a, b"x")
    timer, post = px.sleep(0), px.post(1)
    listener = px.listen(LOOPBACK)
    con = px.connect(listener.getsockname())
    drv.wait_for(sent, pending, timer, post, con, empty)
    for op in (timer, post, con):
        with pytest.raises(ValueError, match="accept, recv, send or readable"):
            px.resubmit(op)
    px.close(a)
    with pytest.raises(ValueError, match="socket is closed"):
        px.resubmit(sent)
    px.resubmit(empty)  # an empty buffer completes with 0 at once again, reading nothing
    drv.seen[empty] = 0
    drv.wait_for(empty)
    assert empty.result == 0
    assert px.pending == 0, "a refused resubmit was counted as pending"


def test_resubmit_on_a_closed_proactor_raises(backend):
    from overlapio import Proactor
    px = Proactor(backend=backend)
    a, b = pair(px)
    r = px.recv(b, bytearray(1))
    px.close()
    assert r.cancelled
    with pytest.raises(ProactorClosedError, match="closed Proactor"):
        px.resubmit(r)
    with pytest.raises(ProactorClosedError, match="closed Proactor"):
        px.try_send(a, b"x")
