"""Differential reference: the same byte-stream scenarios run on overlapio and on
plain asyncio sockets (``loop.sock_sendall`` / ``loop.sock_recv_into`` on a
loopback TCP pair), and both must tell the same story: the same bytes, end of
stream at the same point, the same error class.

asyncio reports the raw errno class; overlapio folds errno into one class per
situation (docs/semantics.md: EPIPE is a ConnectionResetError). So asyncio's
exceptions are passed through ``overlapio.core.errors.normalize`` before the
comparison -- the only translation applied.
"""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from overlapio.core.errors import normalize

from .harness import LOOPBACK, Driver, open_proactor, pair, payload, reset, set_linger_reset

# A scenario is a list of steps; "a" is the connecting side, "b" the accepted one.
#   ("send", side, size, seed)        send payload(size, seed), wait for it
#   ("recv", side, bufsize)           one recv; records data / eof / empty / error
#   ("recv_n", side, n)               recv until n bytes or end of stream; records the bytes
#   ("close", side)                   orderly close
#   ("reset", side)                   SO_LINGER 0 then close: a reset
#   ("pause",)                        let the network settle (20 ms)
#   ("recv_under_reset", side)        a recv pending on side while the other side resets
#   ("send_under_reset", side)        an 8 MiB send pending on side (tiny SO_SNDBUF) while the other resets
SCENARIOS = {
    "stream_then_eof": [("send", "a", 100_000, 1), ("recv_n", "b", 100_000), ("send", "a", 10, 2),
                        ("recv_n", "b", 10), ("close", "a"), ("recv", "b", 100), ("recv", "b", 100)],
    "many_small_sends": [*(("send", "a", n, n) for n in range(1, 40)), ("recv_n", "b", sum(range(1, 40))),
                         ("close", "a"), ("recv", "b", 10)],
    "both_directions": [("send", "a", 5000, 3), ("send", "b", 7000, 4), ("recv_n", "b", 5000),
                        ("recv_n", "a", 7000), ("close", "b"), ("recv", "a", 10)],
    "empty_buffer_is_not_eof": [("recv", "b", 0), ("send", "a", 3, 5), ("recv_n", "b", 3), ("close", "a"),
                                ("recv", "b", 0), ("recv", "b", 10)],
    "data_then_close_then_eof": [("send", "a", 70_000, 6), ("close", "a"), ("recv_n", "b", 1_000_000),
                                 ("recv", "b", 10)],
    "recv_pending_under_reset": [("recv_under_reset", "b"), ("recv", "b", 10)],
    "reset_before_recv": [("send", "a", 10, 7), ("recv_n", "b", 10), ("reset", "a"), ("pause",),
                          ("recv", "b", 10), ("recv", "b", 10)],
    "send_pending_under_reset": [("send_under_reset", "a")],
}


def _outcome_of_exc(exc: BaseException) -> tuple:
    if isinstance(exc, OSError):
        exc = normalize(exc)
    return ("error", type(exc).__name__)


# -- overlapio ---------------------------------------------------------------------------
def run_overlapio(backend, steps) -> list:
    events = []
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = pair(px, drv=drv)
        side = {"a": a, "b": b}
        other = {"a": "b", "b": "a"}

        def one_recv(sock, size):
            op = px.recv(sock, bytearray(size))
            drv.wait_for(op)
            if op.exception is not None:
                return _outcome_of_exc(op.exception)
            if size == 0:
                return ("empty",)
            return ("data", bytes(op.buf[:op.result])) if op.result else ("eof",)

        for step in steps:
            kind = step[0]
            if kind == "send":
                op = px.send(side[step[1]], payload(step[2], step[3]))
                drv.wait_for(op)
                events.append(("sent", op.result) if op.exception is None else _outcome_of_exc(op.exception))
            elif kind == "recv":
                events.append(one_recv(side[step[1]], step[2]))
            elif kind == "recv_n":
                got = bytearray()
                while len(got) < step[2]:
                    ev = one_recv(side[step[1]], min(65536, step[2] - len(got)))
                    if ev[0] != "data":
                        break
                    got += ev[1]
                events.append(("bytes", bytes(got)))
            elif kind == "close":
                px.close(side[step[1]])
            elif kind == "reset":
                reset(px, side[step[1]])
            elif kind == "pause":
                time.sleep(0.02)
            elif kind == "recv_under_reset":
                op = px.recv(side[step[1]], bytearray(10))
                drv.pump(0.05)
                reset(px, side[other[step[1]]])
                drv.wait_for(op)
                events.append(_outcome_of_exc(op.exception) if op.exception else ("data", op.result))
            elif kind == "send_under_reset":
                s = side[step[1]]
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                op = px.send(s, payload(8 << 20))
                drv.pump(0.1)
                reset(px, side[other[step[1]]])
                drv.wait_for(op)
                events.append(_outcome_of_exc(op.exception) if op.exception else ("sent", op.result))
    return events


# -- asyncio -----------------------------------------------------------------------------
def run_asyncio(steps) -> list:
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.socket()
        listener.bind(LOOPBACK)
        listener.listen(8)
        listener.setblocking(False)
        a = socket.socket()
        a.setblocking(False)
        acc = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(a, listener.getsockname())
        b, _ = await acc
        b.setblocking(False)
        listener.close()
        side = {"a": a, "b": b}
        other = {"a": "b", "b": "a"}
        events = []

        async def one_recv(sock, size):
            buf = bytearray(size)
            try:
                n = await loop.sock_recv_into(sock, buf)
            except OSError as exc:
                return _outcome_of_exc(exc)
            if size == 0:
                return ("empty",)
            return ("data", bytes(buf[:n])) if n else ("eof",)

        try:
            for step in steps:
                kind = step[0]
                if kind == "send":
                    data = payload(step[2], step[3])
                    try:
                        await loop.sock_sendall(side[step[1]], data)
                        events.append(("sent", len(data)))
                    except OSError as exc:
                        events.append(_outcome_of_exc(exc))
                elif kind == "recv":
                    events.append(await one_recv(side[step[1]], step[2]))
                elif kind == "recv_n":
                    got = bytearray()
                    while len(got) < step[2]:
                        ev = await one_recv(side[step[1]], min(65536, step[2] - len(got)))
                        if ev[0] != "data":
                            break
                        got += ev[1]
                    events.append(("bytes", bytes(got)))
                elif kind == "close":
                    side[step[1]].close()
                elif kind == "reset":
                    set_linger_reset(side[step[1]])
                    side[step[1]].close()
                elif kind == "pause":
                    await asyncio.sleep(0.02)
                elif kind == "recv_under_reset":
                    task = loop.create_task(one_recv(side[step[1]], 10))
                    await asyncio.sleep(0.05)
                    set_linger_reset(side[other[step[1]]])
                    side[other[step[1]]].close()
                    events.append(await task)
                elif kind == "send_under_reset":
                    s = side[step[1]]
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                    data = payload(8 << 20)

                    async def send():
                        try:
                            await loop.sock_sendall(s, data)
                            return ("sent", len(data))
                        except OSError as exc:
                            return _outcome_of_exc(exc)

                    task = loop.create_task(send())
                    await asyncio.sleep(0.1)
                    set_linger_reset(side[other[step[1]]])
                    side[other[step[1]]].close()
                    events.append(await task)
        finally:
            a.close()
            b.close()
        return events

    return asyncio.run(main())


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_story_as_asyncio(backend, scenario):
    steps = SCENARIOS[scenario]
    reference = run_asyncio(steps)
    ours = run_overlapio(backend, steps)

    def short(events):  # readable diffs: byte strings by length and a digest
        import hashlib
        return [(e[0], len(e[1]), hashlib.sha1(e[1]).hexdigest()[:8]) if e and isinstance(e[-1], bytes)
                else e for e in events]

    assert short(ours) == short(reference), f"overlapio and asyncio disagree on {scenario!r}"
    assert reference, "the scenario recorded nothing"


# -- datagrams: recvfrom/sendto against asyncio's sock_recvfrom_into/sock_sendto ---------------
# Steps on two bound UDP sockets "a" and "b":
#   ("sendto", side, size, seed)   a datagram to the other side
#   ("sendto_dead", side)          a datagram to a loopback port nobody has bound
#   ("recvfrom", side, bufsize)    one recvfrom; records (data, sender is the other side) or the error
#   ("connect", side)              set the other side as the socket's peer
#   ("send", side, size, seed)     send on a connected socket
#   ("recv", side, bufsize)        recv on a connected socket; records the data
#   ("pause",)                     20 ms
DATAGRAM_SCENARIOS = {
    "boundaries": [("sendto", "a", 5, 1), ("sendto", "a", 0, 2), ("sendto", "a", 1400, 3),
                   ("recvfrom", "b", 2048), ("recvfrom", "b", 2048), ("recvfrom", "b", 2048)],
    "truncation": [("sendto", "a", 1000, 4), ("sendto", "a", 4, 5), ("recvfrom", "b", 100),
                   ("recvfrom", "b", 100)],
    "dead_port_then_data": [("sendto_dead", "a"), ("pause",), ("sendto", "b", 10, 6), ("recvfrom", "a", 64),
                            ("sendto_dead", "a"), ("pause",), ("sendto", "b", 11, 7), ("recvfrom", "a", 64)],
    "both_directions": [("sendto", "a", 300, 8), ("sendto", "b", 200, 9), ("recvfrom", "a", 512),
                        ("recvfrom", "b", 512)],
    "connected": [("connect", "a"), ("connect", "b"), ("send", "a", 50, 10), ("recv", "b", 100),
                  ("send", "b", 70, 11), ("recv", "a", 30)],
}


def run_overlapio_datagrams(backend, steps) -> list:
    from . import checks
    events = []
    with open_proactor(backend) as px:
        drv = Driver(px)
        a, b = checks.udp_pair(px)
        side, other = {"a": a, "b": b}, {"a": b, "b": a}

        def done(op):
            drv.wait_for(op)
            return op

        for step in steps:
            kind = step[0]
            if kind == "sendto":
                op = done(px.sendto(side[step[1]], payload(step[2], step[3]), other[step[1]].getsockname()))
                events.append(("sent", op.result))
            elif kind == "sendto_dead":
                op = done(px.sendto(side[step[1]], b"x", checks.dead_udp_address()))
                events.append(("sent", op.result))
            elif kind == "recvfrom":
                op = done(px.recvfrom(side[step[1]], bytearray(step[2])))
                if op.exception is not None:
                    events.append(_outcome_of_exc(op.exception))
                else:
                    n, addr = op.result
                    events.append(("gram", bytes(op.buf[:n]), checks.same_address(addr, other[step[1]])))
            elif kind == "connect":
                done(px.connect(other[step[1]].getsockname(), sock=side[step[1]]))
            elif kind == "send":
                events.append(("sent", done(px.send(side[step[1]], payload(step[2], step[3]))).result))
            elif kind == "recv":
                op = done(px.recv(side[step[1]], bytearray(step[2])))
                events.append(("data", bytes(op.buf[:op.result])))
            elif kind == "pause":
                time.sleep(0.02)
    return events


def run_asyncio_datagrams(steps) -> list:
    from . import checks

    async def main():
        loop = asyncio.get_running_loop()
        a, b = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        side, other = {"a": a, "b": b}, {"a": b, "b": a}
        events = []
        try:
            for s in (a, b):
                s.setblocking(False)
                s.bind(LOOPBACK)
            for step in steps:
                kind = step[0]
                if kind == "sendto":
                    n = await loop.sock_sendto(side[step[1]], payload(step[2], step[3]),
                                               other[step[1]].getsockname())
                    events.append(("sent", n))
                elif kind == "sendto_dead":
                    events.append(("sent", await loop.sock_sendto(side[step[1]], b"x", checks.dead_udp_address())))
                elif kind == "recvfrom":
                    buf = bytearray(step[2])
                    try:
                        n, addr = await asyncio.wait_for(loop.sock_recvfrom_into(side[step[1]], buf), 10)
                    except OSError as exc:
                        events.append(_outcome_of_exc(exc))
                    else:
                        events.append(("gram", bytes(buf[:n]), checks.same_address(addr, other[step[1]])))
                elif kind == "connect":
                    side[step[1]].connect(other[step[1]].getsockname())
                elif kind == "send":
                    data = payload(step[2], step[3])
                    await loop.sock_sendall(side[step[1]], data)
                    events.append(("sent", len(data)))
                elif kind == "recv":
                    buf = bytearray(step[2])
                    n = await asyncio.wait_for(loop.sock_recv_into(side[step[1]], buf), 10)
                    events.append(("data", bytes(buf[:n])))
                elif kind == "pause":
                    await asyncio.sleep(0.02)
        finally:
            a.close()
            b.close()
        return events

    return asyncio.run(main())


@pytest.mark.skipif(not hasattr(asyncio.AbstractEventLoop, "sock_recvfrom_into"),
                    reason="asyncio's sock_recvfrom_into/sock_sendto are Python 3.11+")
@pytest.mark.parametrize("scenario", sorted(DATAGRAM_SCENARIOS))
def test_same_datagram_story_as_asyncio(backend, scenario):
    from .harness import require
    require(backend, "recvfrom")
    steps = DATAGRAM_SCENARIOS[scenario]
    reference = run_asyncio_datagrams(steps)
    ours = run_overlapio_datagrams(backend, steps)
    assert ours == reference, f"overlapio and asyncio disagree on datagram scenario {scenario!r}"
    assert reference, "the scenario recorded nothing"
