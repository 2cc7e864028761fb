"""Scale on the io_uring backend: 10,000 ops pending at once (ten times the
submission queue), and 1,000 connections echoing 1 MiB each."""
from __future__ import annotations

import pytest

from overlapio.backends import uring

from conformance.harness import Driver, open_proactor, pairs, payload

REASON = uring.UringBackend.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(REASON is not None, reason=f"uring unavailable here: {REASON}")]


def test_10000_pending_recvs_complete_once_in_stream_order():
    with open_proactor("uring") as px:
        drv = Driver(px)
        conns = pairs(px, 1000)
        ops = [[px.recv(b, bytearray(4), drv.cb) for _ in range(10)] for _, b in conns]
        assert px.pending == 10_000
        drv.pump(0.05)
        for i, (a, _) in enumerate(conns):
            px.send(a, b"".join(b"%04d" % ((i + k) % 10_000) for k in range(10)), drv.cb)
        flat = [op for row in ops for op in row]
        drv.wait_for(*flat, timeout=60)
        drv.assert_once(flat)
        for i, row in enumerate(ops):
            assert [bytes(op.buf[:op.result]) for op in row] == [b"%04d" % ((i + k) % 10_000) for k in range(10)]


def test_1000_connections_echo_1_mib_each():
    size, chunk = 1 << 20, 1 << 16
    data = payload(size)
    view = memoryview(data)
    with open_proactor("uring") as px:
        conns = pairs(px, 1000)
        checked = {}  # client socket -> bytes that came back intact

        def echo(conn):
            buf = memoryview(bytearray(chunk))

            def on_recv(op):
                if op.exception or op.result == 0:
                    px.close(conn)
                else:
                    px.send(conn, buf[:op.result], on_sent)

            def on_sent(op):
                assert op.exception is None, op
                px.resubmit(rop)

            rop = px.recv(conn, buf, on_recv)

        def client(sock):
            buf = memoryview(bytearray(chunk))
            checked[sock] = 0

            def on_recv(op):
                n = op.result
                got = checked[sock]
                assert buf[:n] == view[got:got + n], f"bytes {got}..{got + n} came back wrong"
                checked[sock] = got + n
                if got + n < size:
                    px.resubmit(op)
                else:
                    px.close(sock)  # the server sees end of stream and closes its side

            px.send(sock, data, lambda op: op.result)
            px.recv(sock, buf, on_recv)

        for a, b in conns:
            echo(b)
            client(a)
        px.run()
        assert sorted(set(checked.values())) == [size]
