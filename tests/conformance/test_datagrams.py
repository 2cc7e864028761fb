"""Datagrams: recvfrom, sendto, bind, connected UDP (docs/semantics.md, "Datagrams")."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from overlapio import Datagram

from . import checks
from .harness import Driver, open_proactor, payload, require


@pytest.fixture(autouse=True)
def _supported(backend):
    """These checks are of an optional part of the Backend contract."""
    require(backend, "recvfrom")
    require(backend, "sendto")


def test_one_datagram_per_completion_in_order(backend):
    checks.check_datagram_boundaries(backend)


def test_truncation_is_flagged(backend):
    checks.check_datagram_truncation(backend)


def test_port_unreachable_never_fails_recvfrom(backend):
    checks.check_icmp_never_fails_recvfrom(backend)


def test_connected_datagram_socket_with_recv_and_send(px):
    drv = Driver(px)
    a, b = checks.udp_pair(px)
    for s, peer in ((a, b), (b, a)):
        c = px.connect(peer.getsockname(), sock=s)
        drv.wait_for(c)
        assert c.result is s
    r = px.recv(b, bytearray(3))
    drv.wait_for(px.send(a, b"hello"), px.send(a, [b"ab", b"cd"]))
    drv.wait_for(r)
    assert r.result == 3 and bytes(r.buf) == b"hel", f"recv of a 5-byte datagram into 3 bytes: {r!r}"
    bufs = [bytearray(1), bytearray(10)]
    r2 = px.recv(b, bufs)  # the rest of "hello" was dropped with its datagram
    drv.wait_for(r2)
    assert r2.result == 4 and bytes(bufs[0]) + bytes(bufs[1][:3]) == b"abcd", r2
    f = px.recvfrom(a, bytearray(10))
    drv.wait_for(px.send(b, b"back"), f)
    assert bytes(f.buf[:f.result.nbytes]) == b"back" and checks.same_address(f.result.address, b)


def test_datagram_ops_cancel_and_close(px):
    drv = Driver(px)
    a, b = checks.udp_pair(px)
    r1 = px.recvfrom(b, bytearray(10), drv.cb)
    r2 = px.recvfrom(b, bytearray(10), drv.cb)
    assert px.cancel(r1) is True
    drv.wait_for(r1)
    assert r1.cancelled and r1.nbytes == 0
    drv.wait_for(px.sendto(a, b"kept", b.getsockname()))
    drv.wait_for(r2)  # the cancel lost nothing: the datagram went to the next recvfrom
    assert bytes(r2.buf[:r2.result.nbytes]) == b"kept"
    timed = px.recvfrom(b, bytearray(10), drv.cb, timeout=0.05)
    drv.wait_for(timed)
    assert type(timed.exception) is TimeoutError and timed.nbytes == 0, timed
    pending = [px.recvfrom(b, bytearray(10), drv.cb) for _ in range(3)]
    px.close(b)
    drv.wait_for(*pending)
    drv.pump(0.05)
    drv.assert_once([r1, r2, timed, *pending])
    assert all(op.cancelled for op in pending)


def test_datagram_calls_refuse_bad_arguments(px):
    drv = Driver(px)
    a, b = checks.udp_pair(px)
    listener = px.listen(("127.0.0.1", 0))
    to = b.getsockname()
    for call, exc, match in [
        (lambda: px.recvfrom(listener, bytearray(10)), ValueError, "datagram"),
        (lambda: px.sendto(listener, b"x", to), ValueError, "datagram"),
        (lambda: px.recvfrom(b, bytearray(0)), ValueError, "non-empty"),
        (lambda: px.recvfrom(b, b"read-only"), TypeError, "writable"),
        (lambda: px.recvfrom(b, -1), TypeError, "writable"),
        (lambda: px.sendto(a, "text", to), TypeError, "bytes-like"),
        (lambda: px.sendto(a, b"x", "127.0.0.1:9"), TypeError, "address tuple"),
        (lambda: px.sendto(a, b"x", ("127.0.0.1",)), TypeError, "address tuple"),
        (lambda: px.sendto(a, b"x", ("localhost", 9)), ValueError, "numeric IPv4"),
        (lambda: px.sendto(a, b"x", ("::1", 9)), ValueError, "numeric IPv4"),
        (lambda: px.sendto(a, b"x", ("\udcff", 9)), ValueError, "numeric IPv4"),
        (lambda: px.sendto(a, b"x", ("127.0.0.1", 70000)), ValueError, "port"),
        (lambda: px.sendto(a, b"x", ("127.0.0.1", -1)), ValueError, "port"),
        (lambda: px.sendto(a, b"x", (127, 9)), TypeError, "host"),
        (lambda: px.recvfrom(a.fileno(), bytearray(1)), TypeError, "socket.socket"),
    ]:
        with pytest.raises(exc, match=match):
            call()
    assert px.pending == 0, "a rejected call was counted as pending"
    r = px.recvfrom(b, bytearray(10))
    drv.wait_for(px.sendto(a, b"fine", to), r)
    assert bytes(r.buf[:4]) == b"fine"


def test_bind_and_datagram_value(px):
    s = px.bind(("127.0.0.1", 0))
    assert s.type == socket.SOCK_DGRAM and s.getsockname()[1] != 0
    with pytest.raises(OSError):
        px.bind(s.getsockname())  # in use
    d = Datagram(3, ("127.0.0.1", 9))
    n, addr = d
    assert (n, addr, d.nbytes, d.address, d.truncated) == (3, ("127.0.0.1", 9), 3, ("127.0.0.1", 9), False)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=12), bufsize=st.integers(1, 3000),
       pending=st.integers(0, 4))
@example(sizes=[0, 1, 2999, 3000], bufsize=1, pending=4)
def test_random_datagrams_keep_their_boundaries(backend, sizes, bufsize, pending):
    """Any datagrams, any buffer, any number of recvfroms pending before they are
    sent: each completion is exactly one datagram (its first ``bufsize`` bytes),
    truncated exactly when it did not fit, in order."""
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = checks.udp_pair(px)
        ops = [px.recvfrom(b, bytearray(bufsize)) for _ in range(min(pending, len(sizes)))]
        grams = [payload(n, i) for i, n in enumerate(sizes)]
        drv.wait_for(*[px.sendto(a, g, b.getsockname()) for g in grams])
        ops += [px.recvfrom(b, bytearray(bufsize)) for _ in range(len(sizes) - len(ops))]
        drv.wait_for(*ops)
        for op, g in zip(ops, grams):
            n, _ = op.result
            assert n == min(len(g), bufsize) and op.result.truncated == (len(g) > bufsize), (op.result, len(g))
            assert bytes(op.buf[:n]) == g[:n]
