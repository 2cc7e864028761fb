"""IPv6 and dual stack: the ops on ``::1`` and on a dual-stack listener
(docs/semantics.md, "IPv6 and dual stack")."""
from __future__ import annotations

import socket

import pytest

from . import checks
from overlapio import Backend

from .harness import Driver, backend_class, payload, recv_exactly, recv_to_eof, require


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")


def _pair(px, drv, listener, host):
    acc = px.accept(listener)
    con = px.connect((host, listener.getsockname()[1]))
    drv.wait_for(acc, con)
    return con.result, acc.result


def test_stream_ops_on_ipv6_loopback(px, backend):
    cls = backend_class(backend)
    lists, shutdown = cls.multi_buffer, cls.shutdown is not Backend.shutdown  # (optional parts)
    drv = Driver(px)
    listener = px.listen(("::1", 0))
    a, (b, peer) = _pair(px, drv, listener, "::1")
    assert a.family == b.family == socket.AF_INET6
    assert len(peer) == 4 and peer[0] == "::1" and peer[1] == a.getsockname()[1], peer
    data = payload(200_000, 1)
    s = px.send(a, data)
    v = px.send(a, [b"x", b"yz"] if lists else b"xyz")
    assert recv_exactly(px, b, len(data) + 3, drv) == data + b"xyz"
    drv.wait_for(s, v)
    n = px.try_send(b, b"back")
    assert n == 4 and recv_exactly(px, a, 4, drv) == b"back"
    r = px.recv(b, bytearray(10))
    assert px.cancel(r) is True
    drv.wait_for(r)
    assert r.cancelled
    if shutdown:
        drv.wait_for(px.shutdown(a))
        assert recv_to_eof(px, b, drv) == b""
    holder = px.socket(socket.AF_INET6)
    holder.bind(("::1", 0))
    refused = px.connect(holder.getsockname())
    drv.wait_for(refused)
    assert isinstance(refused.exception, ConnectionRefusedError), refused


def test_dual_stack_listener_takes_both_families(px):
    drv = Driver(px)
    listener = px.listen(("::", 0), dualstack=True)
    port = listener.getsockname()[1]
    for host, want in (("127.0.0.1", "::ffff:127.0.0.1"), ("::1", "::1")):
        a, (b, peer) = _pair(px, drv, listener, host)
        assert peer[0] == want and len(peer) == 4, f"a {host} client was accepted as {peer}"
        drv.wait_for(px.send(a, host.encode()))
        assert recv_exactly(px, b, len(host), drv) == host.encode()
        drv.wait_for(px.send(b, b"ok"))
        assert recv_exactly(px, a, 2, drv) == b"ok"
    with pytest.raises(ValueError, match="IPv6"):
        px.listen(("127.0.0.1", 0), dualstack=True)
    assert port


def test_datagrams_on_ipv6_loopback(backend):
    require(backend, "recvfrom")
    checks.check_datagram_boundaries(backend, "::1")
    checks.check_datagram_truncation(backend, "::1")
    checks.check_icmp_never_fails_recvfrom(backend, "::1")


def test_dual_stack_datagram_socket(px, backend):
    require(backend, "recvfrom")
    drv = Driver(px)
    server = px.bind(("::", 0), dualstack=True)
    port = server.getsockname()[1]
    for client, host, want in ((px.bind(("127.0.0.1", 0)), "127.0.0.1", "::ffff:127.0.0.1"),
                               (px.bind(("::1", 0)), "::1", "::1")):
        r = px.recvfrom(server, bytearray(64))
        drv.wait_for(px.sendto(client, b"ping", (host, port)), r)
        n, addr = r.result
        assert addr[0] == want and addr[1] == client.getsockname()[1], addr
        back = px.recvfrom(client, bytearray(64))
        drv.wait_for(px.sendto(server, b"pong", addr), back)  # reply to the address as reported
        assert bytes(back.buf[:back.result.nbytes]) == b"pong"
        assert back.result.address[1] == port


def test_bad_flowinfo_or_scope_id_refused_at_submit(px, backend):
    # Checked with the host and port: a backend that packs the address must never
    # meet one it cannot pack after the op was counted and queued.
    require(backend, "recvfrom")
    drv = Driver(px)
    a, b = px.bind(("::1", 0)), px.bind(("::1", 0))
    port = b.getsockname()[1]
    for address, match in [(("::1", port, -1, 0), "flowinfo"), (("::1", port, 0x100000, 0), "flowinfo"),
                           (("::1", port, 0, -1), "scope_id"), (("::1", port, 0, 2**32), "scope_id"),
                           (("::1", port, 0, "x"), "scope_id"), (("::1", port, 1.0, 0), "flowinfo")]:
        with pytest.raises(ValueError, match=match):
            px.sendto(a, b"x", address)
    assert px.pending == 0, "a rejected sendto was counted as pending"
    r = px.recvfrom(b, bytearray(16))
    drv.wait_for(px.sendto(a, b"fine", ("::1", port, 0xFFFFF, 0)), r)
    assert bytes(r.buf[:r.result.nbytes]) == b"fine"
    assert px.pending == 0
