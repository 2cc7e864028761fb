"""Multi-buffer recv and send: a list of buffers as one op (docs/semantics.md,
"Multi-buffer ops")."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from . import checks
from .harness import Driver, open_proactor, pair, payload, recv_exactly, recv_to_eof, require


@pytest.fixture(autouse=True)
def _supported(backend):
    """These checks are of an optional part of the Backend contract."""
    require(backend, "multi_buffer")


def test_list_ops_keep_the_order(backend):
    checks.check_vector_ops_keep_order(backend)


def test_list_ops_with_timeout_and_trace(backend):
    from overlapio import Proactor
    lines = []
    px = Proactor(backend=backend, trace=lines.append)
    try:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        r = px.recv(b, [bytearray(2), bytearray(2)], timeout=0.05)
        drv.wait_for(r)
        assert type(r.exception) is TimeoutError and r.nbytes == 0, r
        s = px.send(a, [b"ab", b"cd"], timeout=5)
        r2 = px.recv(b, [bytearray(2), bytearray(2)], timeout=5)
        drv.wait_for(s, r2)
        assert s.result == 4 and r2.result >= 1
        assert any("buffers=2" in line for line in lines), lines
    finally:
        px.close()


def test_list_send_cancelled_reports_exact_nbytes(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    parts = [payload(400_000, seed) for seed in range(5)]
    vec = px.send(a, parts)
    drv.pump(0.02)
    px.cancel(vec)
    after = px.send(a, b"after")
    drv.wait_for(vec, after)
    whole = b"".join(parts)
    if vec.cancelled:
        assert 0 <= vec.nbytes <= len(whole)
    else:
        assert vec.result == vec.nbytes == len(whole)
    px.close(a)
    got = recv_to_eof(px, b, drv)
    assert got == whole[:vec.nbytes] + b"after", (
        f"peer got {len(got)} bytes; the cancelled list send reported {vec.nbytes}")


def test_list_recv_cancelled_keeps_the_data(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.recv(b, [bytearray(4), bytearray(4)])
    px.cancel(r)
    drv.wait_for(r)
    assert r.cancelled and r.nbytes == 0, r
    drv.wait_for(px.send(a, b"12345678"))
    bufs = [bytearray(4), bytearray(4)]
    r2 = px.recv(b, bufs)
    drv.wait_for(r2)
    got = (bytes(bufs[0]) + bytes(bufs[1]))[:r2.result]
    assert got + recv_exactly(px, b, 8 - r2.result, drv) == b"12345678"


def test_list_recv_end_of_stream_and_resubmit(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    bufs = [bytearray(2), bytearray(3)]
    got = bytearray()

    def on_recv(op):
        drv.cb(op)
        if op.result:
            got.extend((bytes(bufs[0]) + bytes(bufs[1]))[:op.result])
            px.resubmit(op)

    r = px.recv(b, bufs, on_recv)
    data = payload(1000, 3)
    drv.wait_for(px.send(a, data))
    px.close(a)
    drv.wait_until(lambda: r.done and r._inflight is None and r.result == 0, what="end of stream")
    assert bytes(got) == data


def test_lists_of_empty_buffers_complete_at_once(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    r = px.recv(b, [bytearray(0), memoryview(bytearray(5))[:0]])
    s = px.send(a, [b"", bytearray()])
    drv.wait_for(r, s)
    assert r.result == 0 and s.result == 0


def test_list_ops_refuse_bad_arguments(px):
    drv = Driver(px)
    a, b = pair(px, drv=drv)
    with pytest.raises(ValueError, match="at least one buffer"):
        px.recv(b, [])
    with pytest.raises(ValueError, match="at least one buffer"):
        px.send(a, [])
    with pytest.raises(TypeError, match="writable buffer.*bytes"):
        px.recv(b, [bytearray(1), b"read-only"])
    with pytest.raises(TypeError, match="bytes-like.*str"):
        px.send(a, [b"ok", "text"])
    with pytest.raises(ValueError, match="at most 1024 buffers"):
        px.send(a, [b"x"] * 1025)
    with pytest.raises(TypeError, match="writable buffer"):
        px.recv(b, (bytearray(1), bytearray(1)))  # a tuple is not a list of buffers
    assert px.pending == 0
    s = px.send(a, [b"o", b"k"])
    drv.wait_for(s)
    assert recv_exactly(px, b, 2, drv) == b"ok"


layouts = st.lists(st.lists(st.integers(0, 3000), min_size=1, max_size=6), min_size=1, max_size=6)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sends=layouts, recvs=st.lists(st.integers(0, 2000), min_size=1, max_size=5))
@example(sends=[[1, 0, 2], [3000]], recvs=[0, 1, 7])
def test_random_buffer_lists_keep_the_stream(backend, sends, recvs):
    """Any layout of list sends, read back by list recvs of any layout, gives the
    stream in order: each op's count is its bytes over all its buffers."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        parts = [[payload(n, 100 * i + j) for j, n in enumerate(layout)] for i, layout in enumerate(sends)]
        ops = [px.send(a, p) for p in parts]
        want = b"".join(b"".join(p) for p in parts)
        got = bytearray()
        layout = [n for n in recvs if n] or [1]
        while len(got) < len(want):
            bufs = [bytearray(n) for n in layout]
            r = px.recv(b, bufs)
            drv.wait_for(r)
            assert 0 < r.result <= sum(layout), r
            got += b"".join(bufs)[:r.result]
        drv.wait_for(*ops)
        assert [op.result for op in ops] == [sum(layout) for layout in sends]
        assert bytes(got) == want, "list recvs did not read the list sends' stream in order"
