"""Abuse that a server meets in the wild, on every backend: reset storms, many
streams under random cancels, half-close with a large echo, and churn (sockets and
whole Proactors made and closed by the thousand) that must leave nothing behind.

Sizes are chosen so each case runs in a few seconds on posix; the bounds on what
may be left over are exact (descriptors) or far from what a leak would show
(threads, memory).
"""
from __future__ import annotations

import gc
import random
import socket
import threading
import tracemalloc

import pytest

from overlapio import Proactor

from .harness import LIMIT, LOOPBACK, Driver, fd_snapshot, pairs, payload, set_linger_reset


def _echo_server(px: Proactor, listener: socket.socket, served: list) -> None:
    """Accept forever; echo each connection until it ends or fails, then close it."""

    def serve(conn):
        buf = bytearray(65536)

        def on_recv(op):
            if op.exception is not None or op.result == 0:
                px.close(conn)
            else:
                px.send(conn, bytes(buf[:op.result]), callback=on_sent)

        def on_sent(op):
            if op.exception is not None:
                px.close(conn)
            else:
                px.recv(conn, buf, callback=on_recv)

        px.recv(conn, buf, callback=on_recv)

    def on_accept(op):
        if op.exception is None:
            served.append(op.result[1])
            serve(op.result[0])
        if not op.cancelled:
            px.accept(listener, callback=on_accept)

    px.accept(listener, callback=on_accept)


@pytest.mark.slow
def test_reset_storm_leaves_the_server_serving(px):
    """1,000 clients connect and reset at once (some before the accept, some with a
    recv pending); the server's accept loop and a well-behaved client's echo go on."""
    listener = px.listen(LOOPBACK, backlog=256)
    served: list = []
    _echo_server(px, listener, served)
    addr = listener.getsockname()
    drv = Driver(px)
    rng = random.Random(3)
    for _ in range(10):
        batch = [px.connect(addr) for _ in range(100)]
        drv.wait_for(*batch)
        for op in batch:
            if rng.random() < 0.5:
                px.try_send(op.result, b"x")
            set_linger_reset(op.result)
            px.close(op.result)
        while True:  # let the accept loop drain the backlog before the next batch
            n = len(served)
            drv.pump(0.05)
            if len(served) == n:
                break
    con = px.connect(addr)
    drv.wait_for(con)
    good = con.result
    data = payload(200_000, seed=5)
    got = bytearray()
    px.send(good, data)
    while len(got) < len(data):
        buf = bytearray(65536)
        op = px.recv(good, buf)
        drv.wait_for(op)
        assert op.result > 0, "the server closed a well-behaved client during a reset storm"
        got += buf[:op.result]
    assert bytes(got) == data
    assert len(served) >= 1, "nothing was accepted"
    px.close(good)
    px.close(listener)


def test_random_cancels_over_many_streams_lose_no_byte(px):
    """100 streams of 64 KiB. The reader submits recvs of random sizes and cancels
    half of them at once; each completion lets the writer send one more random
    piece, so cancels meet recvs both before and after data arrived. Every op
    completes exactly once, and the bytes the recvs report give each stream intact."""
    rng = random.Random(11)
    drv = Driver(px)
    streams = pairs(px, 100)
    size = 65536
    writer = {}  # reader socket -> (writer socket, data, next offset)
    got = {}
    recvs = []

    def send_piece(sock):
        a, data, pos = writer[sock]
        if pos < size:
            n = rng.randint(1, 9000)
            px.send(a, data[pos:pos + n], callback=drv.cb)
            writer[sock] = (a, data, pos + n)

    def read(sock):
        op = px.recv(sock, bytearray(rng.randint(1, 5000)), callback=on_recv)
        recvs.append(op)
        if rng.random() < 0.5:
            px.cancel(op)

    def on_recv(op):
        drv.cb(op)
        if op.exception is None:
            assert op.result > 0, "end of stream before the peer finished"
            got[op.sock] += op.buf[:op.result]
        else:
            assert op.cancelled, f"a recv failed: {op.exception!r}"
            assert op.nbytes == 0, "a cancelled recv reported bytes it did not hand over"
        if len(got[op.sock]) < size:
            read(op.sock)
            send_piece(op.sock)

    for i, (a, b) in enumerate(streams):
        writer[b] = (a, payload(size, seed=100 + i), 0)
        got[b] = bytearray()
        read(b)
        send_piece(b)
    drv.wait_until(lambda: all(len(got[b]) >= size for _, b in streams), timeout=3 * LIMIT,
                   what="every stream to arrive under random cancels")
    for _, b in streams:
        assert bytes(got[b]) == writer[b][1], "a stream came back changed under random cancels"
    drv.assert_once(recvs)
    cancelled = sum(1 for op in recvs if op.cancelled)
    assert 0 < cancelled < len(recvs), f"{cancelled} of {len(recvs)} recvs cancelled: the race was not exercised"


def test_half_close_with_a_large_echo(px):
    """A client sends 8 MiB, then shuts its sending side; the echo server reads to
    end of stream, echoing as it goes, then closes: the client reads all 8 MiB back
    and then end of stream."""
    listener = px.listen(LOOPBACK)
    _echo_server(px, listener, [])
    drv = Driver(px)
    con = px.connect(listener.getsockname())
    drv.wait_for(con)
    client = con.result
    data = payload(8 << 20, seed=9)
    got = bytearray()
    state = {"eof": False}

    def on_sent(op):
        drv.cb(op)
        assert op.exception is None, op.exception
        client.shutdown(socket.SHUT_WR)

    def on_recv(op):
        drv.cb(op)
        assert op.exception is None, op.exception
        if op.result == 0:
            state["eof"] = True
        else:
            got.extend(op.buf[:op.result])
            px.recv(client, op.buf, callback=on_recv)

    px.send(client, data, callback=on_sent)
    px.recv(client, bytearray(65536), callback=on_recv)
    drv.wait_until(lambda: state["eof"], timeout=3 * LIMIT, what="the echo and then end of stream")
    assert len(got) == len(data) and bytes(got) == data
    px.close(client)
    px.close(listener)


def _assert_churn_leaves_nothing(cycle, warm: int, count: int, what: str, after_each=None) -> None:
    """Run ``cycle`` ``warm`` times (pools and caches settle), then ``count`` times:
    the same descriptors, no more threads, and under 256 KiB of traced memory growth."""
    for _ in range(warm):
        cycle()
    gc.collect()
    fds, threads = fd_snapshot(), threading.active_count()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            cycle()
        if after_each is not None:
            after_each()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    after = fd_snapshot()
    if fds is not None:
        assert {fd for fd, _ in after} == {fd for fd, _ in fds}, f"descriptors changed over {what}"
    assert threading.active_count() <= threads, f"threads grew over {what}"
    assert grown < 256 * 1024, f"memory grew by {grown} B over {what}"


@pytest.mark.slow
def test_connect_close_churn_leaves_nothing(px):
    """2,500 connect/accept/close cycles (after 500 to settle): no descriptor, thread
    or memory growth."""
    listener = px.listen(LOOPBACK, backlog=64)
    addr = listener.getsockname()
    drv = Driver(px)

    def cycle():
        acc = px.accept(listener)
        con = px.connect(addr)
        drv.wait_for(acc, con)
        px.close(con.result)
        px.close(acc.result[0])

    def forget():  # the driver's record of surfaced ops is the test's, not a leak
        drv.seen.clear()
        drv.order.clear()

    _assert_churn_leaves_nothing(cycle, 500, 2500, "2,500 connect/close cycles", forget)
    px.close(listener)


@pytest.mark.slow
def test_proactor_create_close_churn_leaves_nothing(backend):
    """1,000 Proactors made, used once and closed (after 50 to settle):
    descriptors and threads back to where they were; memory flat."""

    def cycle():
        with Proactor(backend=backend) as p:
            op = p.sleep(0)
            p.post(1)
            assert len(p.wait(LIMIT)) >= 1
            p.run()
            assert op.done

    _assert_churn_leaves_nothing(cycle, 50, 1000, "1,000 Proactors")


@pytest.mark.slow
def test_many_idle_connections_cost_no_cpu(px):
    """1,000 idle connections, each with a recv pending: a wait of 0.5 s uses next
    to no CPU (a loop that scanned them, or spun, would show)."""
    import time

    socks = [s for p in pairs(px, 500) for s in p]
    for s in socks:
        px.recv(s, bytearray(1))
    px.wait(0.05)
    c0, t0 = time.process_time(), time.monotonic()
    px.wait(0.5)
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    assert wall >= 0.5
    assert cpu < 0.05, f"wait(0.5) with 1,000 idle recvs pending used {cpu:.3f} s of CPU"
    for s in socks:
        px.close(s)


@pytest.mark.slow
def test_slow_clients_do_not_hold_up_a_fast_one(px):
    """50 clients trickle a byte at a time into the echo server while one client
    echoes 1 MiB: the fast stream completes intact while every slow one is still
    connected, and each slow client gets its bytes back."""
    listener = px.listen(LOOPBACK, backlog=64)
    _echo_server(px, listener, [])
    addr = listener.getsockname()
    drv = Driver(px)
    cons = [px.connect(addr) for _ in range(51)]
    drv.wait_for(*cons)
    fast, slow = cons[0].result, [op.result for op in cons[1:]]
    echoed = {s: bytearray() for s in slow}

    def trickle_recv(s):
        def on_recv(op):
            if op.exception is None and op.result:
                echoed[s] += op.buf[:op.result]
                px.recv(s, bytearray(16), callback=on_recv)
        px.recv(s, bytearray(16), callback=on_recv)

    for s in slow:
        trickle_recv(s)
    data = payload(1 << 20, seed=8)
    got = bytearray()
    done = {"fast": False}

    def on_fast(op):
        assert op.exception is None and op.result > 0, op
        got.extend(op.buf[:op.result])
        if len(got) < len(data):
            px.recv(fast, op.buf, callback=on_fast)
        else:
            done["fast"] = True

    px.send(fast, data)
    px.recv(fast, bytearray(65536), callback=on_fast)
    rounds = 0
    while not done["fast"] and rounds < 400:  # a byte from every slow client, each round
        for s in slow:
            px.try_send(s, b"s")
        drv.pump(0.01)
        rounds += 1
    assert done["fast"], "the fast client's echo did not finish beside the slow ones"
    assert bytes(got) == data
    drv.wait_until(lambda: all(len(echoed[s]) == rounds for s in slow),
                   what="every slow client's bytes to come back")
    for s in [fast, *slow, listener]:
        px.close(s)
