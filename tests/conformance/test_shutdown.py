"""Half-close: the shutdown op (docs/semantics.md, "shutdown")."""
from __future__ import annotations

import socket

import pytest

from . import checks
from .harness import Driver, pair, payload, recv_exactly, recv_to_eof, require


@pytest.fixture(autouse=True)
def _supported(backend):
    """These checks are of an optional part of the Backend contract."""
    require(backend, "shutdown")


def test_shutdown_runs_after_earlier_sends(backend):
    checks.check_shutdown_after_sends(backend)


def test_shutdown_with_nothing_pending_and_twice(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    drv.wait_for(px.send(a, b"abc"))
    first = px.shutdown(a)
    assert drv.seen[first] == 0
    drv.wait_for(first)
    assert first.result is None
    assert recv_to_eof(px, b, drv) == b"abc"
    late = px.send(a, b"x")
    drv.wait_for(late)
    assert isinstance(late.exception, BrokenPipeError), late
    assert late.nbytes == 0
    # both sides shut: the peer's shutdown reaches our pending recv as end of stream
    r = px.recv(a, bytearray(10))
    drv.wait_for(px.shutdown(b))
    drv.wait_for(r)
    assert r.result == 0


def test_cancelled_shutdown_shuts_nothing(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = payload(2_000_000, 1)
    s = px.send(a, big)
    shut = px.shutdown(a)
    assert px.cancel(shut) is True
    got = recv_exactly(px, b, len(big), drv)
    drv.wait_for(s, shut)
    assert got == big
    assert shut.cancelled, f"a shutdown cancelled while a send was ahead of it gave {shut!r}"
    after = px.send(a, b"more")  # the sending side stayed open
    drv.wait_for(after)
    assert after.result == 4
    assert recv_exactly(px, b, 4, drv) == b"more"


def test_close_with_a_shutdown_pending(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    s = px.send(a, payload(4_000_000, 2))
    shut = px.shutdown(a, callback=drv.cb)
    px.close(a)
    drv.wait_for(s, shut)
    drv.pump(0.05)
    drv.assert_once([s, shut])
    assert shut.cancelled, shut


def test_shutdown_refuses_bad_arguments(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    with pytest.raises(ValueError, match="SHUT_WR only"):
        px.shutdown(a, socket.SHUT_RD)
    with pytest.raises(ValueError, match="SHUT_WR only"):
        px.shutdown(a, "write")
    with pytest.raises(TypeError, match="socket.socket"):
        px.shutdown(a.fileno())
    udp = px.socket(type=socket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="stream"):
        px.shutdown(udp)
    closed = px.socket()
    closed.close()
    with pytest.raises(ValueError, match="socket is closed"):
        px.shutdown(closed)
    assert px.pending == 0
    drv.wait_for(px.send(a, b"ok"))
    assert recv_exactly(px, b, 2, drv) == b"ok"
