"""``readable(sock)``: the zero-byte receive. It completes when the socket has
something to read, reads nothing, holds no buffer, and cancels, times out,
closes and resubmits like any op."""
from __future__ import annotations

from overlapio import OperationCancelled

from . import checks
from .harness import Driver, open_proactor, pair, recv_exactly, reset


def test_readable_completes_when_data_arrives_and_leaves_it_unread(backend):
    checks.check_readable_leaves_data_unread(backend)


def test_readable_completes_on_end_of_stream_and_on_reset(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.readable(b, drv.cb)
    assert r.buf is None  # no buffer, pinned or not
    drv.pump(0.05)
    assert not r.done
    px.close(a)  # end of stream
    drv.wait_for(r)
    assert r.exception is None, f"readable under end of stream gave {r!r}"
    eof = px.recv(b, bytearray(10))
    drv.wait_for(eof)
    assert eof.result == 0, f"the recv after a readable op at end of stream gave {eof!r}"

    c, d = pair(px, drv=drv)
    r = px.readable(d, drv.cb)
    drv.pump(0.05)
    assert not r.done
    reset(px, c)
    drv.wait_for(r)
    # The reset is readiness (the next recv reports it), or the op's own error.
    assert r.exception is None or isinstance(r.exception, ConnectionResetError), f"readable under a reset gave {r!r}"
    after = px.recv(d, bytearray(10))
    drv.wait_for(after)
    assert isinstance(after.exception, ConnectionResetError) or after.result == 0, (
        f"the recv after a readable op under a reset gave {after!r}")


def test_readable_cancel_timeout_resubmit_and_close(backend):
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        c = px.readable(b, drv.cb)
        assert px.cancel(c) is True
        assert not drv.seen[c], "cancel surfaced the op inside cancel()"
        drv.wait_for(c)
        assert type(c.exception) is OperationCancelled, c

        t = px.readable(b, drv.cb, timeout=0.05)
        drv.wait_for(t)
        assert type(t.exception) is TimeoutError and "readable" in str(t.exception), t

        # resubmitted, the same op waits again: for new data, once the old was read
        drv.seen[c] = 0  # (each submission surfaces once)
        px.resubmit(c)
        drv.wait_for(px.send(a, b"one"), c)
        assert c.exception is None, c
        assert recv_exactly(px, b, 3, drv) == b"one"
        drv.seen[c] = 0
        px.resubmit(c, timeout=0.05)
        drv.wait_for(c)
        assert type(c.exception) is TimeoutError, f"a readable op with nothing left to read gave {c!r}"
        drv.seen[c] = 0
        px.resubmit(c)
        drv.wait_for(px.send(a, b"two"), c)
        assert c.exception is None and recv_exactly(px, b, 3, drv) == b"two"
        drv.assert_once([t])

        # close(sock) with readable ops pending: each completes once, cancelled
        pending = [px.readable(b, drv.cb) for _ in range(2)]
        drv.pump(0.05)
        px.close(b)
        drv.wait_for(*pending)
        drv.pump(0.05)
        drv.assert_once(pending)
        assert all(type(op.exception) is OperationCancelled for op in pending), pending

        # close() of the Proactor with one pending: cancelled, its callback run once
        e, f = pair(px, drv=drv)
        last = px.readable(f, drv.cb)
        px.close()
        assert last.cancelled and drv.seen[last] == 1, last
