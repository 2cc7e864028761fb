"""``overlapio udp-server`` / ``udp-client``: a small game-server loop over UDP.

The server ticks at a fixed rate (default 20 Hz). Clients send a small state
update (their position) every tick; at each tick the server sends every client
it has heard from in the last few seconds a snapshot of all positions, echoing
that client's latest sequence number and send time so the client can measure the
round trip. Both print one line per second: packets in and out, loss (gaps in
the sequence numbers they receive) and, on the client, round-trip times -- from an
update to the first snapshot that echoes it, so they include the wait for the
server's next tick (up to one tick period, 50 ms at 20 Hz).

It shows the completion model on datagrams: a few ``recvfrom`` ops are always
pending on the socket (each completion is one datagram; it is replaced from its
callback by a new one), every send is a ``sendto`` op, and the tick is a ``sleep`` op armed
for the next deadline, so the loop never sleeps in a blocking call.
"""
from __future__ import annotations

import argparse
import struct
import sys
import time
from typing import Any, Callable

from .core import Proactor

DEFAULT_PORT = 7778
UPDATE = struct.Struct("!4sIId2f")  # magic, client id, seq, client time, x, y
SNAP_HEAD = struct.Struct("!4sIIdH")  # magic, tick, echoed seq, echoed client time, players
PLAYER = struct.Struct("!I2f")  # id, x, y
UPDATE_MAGIC, SNAP_MAGIC = b"OVU1", b"OVS1"
MAX_DATAGRAM = 1200  # stays under a common path MTU: a snapshot lists at most this many players
MAX_PLAYERS = (MAX_DATAGRAM - SNAP_HEAD.size) // PLAYER.size
RECVS = 8  # recvfroms kept pending per socket
FORGET_AFTER = 5.0  # seconds without an update before the server drops a client


class _Seq:
    """Counts datagrams received and those missing, from their sequence numbers
    (a number lower than the highest seen is a late one, not a loss)."""

    __slots__ = ("highest", "got", "lost")

    def __init__(self) -> None:
        self.highest = -1
        self.got = 0
        self.lost = 0

    def see(self, seq: int) -> bool:
        self.got += 1
        if seq <= self.highest:
            self.lost = max(0, self.lost - 1)  # it arrived after all, out of order
            return False
        if self.highest >= 0:
            self.lost += seq - self.highest - 1
        self.highest = seq
        return True


class _Ticker:
    """Calls ``tick(n)`` at a fixed rate on the Proactor, with a sleep op armed for
    each next deadline (no drift: deadlines are start + n / rate)."""

    def __init__(self, px: Proactor, rate: float, tick: Callable[[int], None]) -> None:
        self.px, self.period, self.tick = px, 1.0 / rate, tick
        self.start = time.monotonic()
        self.n = 0
        self.op: Any = None
        self.stopped = False
        self._arm()

    def _arm(self) -> None:
        delay = self.start + (self.n + 1) * self.period - time.monotonic()
        self.op = self.px.sleep(max(0.0, delay), self._fired)

    def _fired(self, op: Any) -> None:
        if op.cancelled or self.stopped:
            return
        self.n += 1
        self.tick(self.n)
        self._arm()

    def stop(self) -> None:
        self.stopped = True
        self.px.cancel(self.op)


def _receive(px: Proactor, sock: Any, on_datagram: Callable[[bytes, Any], None], count: int = RECVS) -> None:
    """Keep ``count`` recvfroms pending on ``sock``; each datagram goes to
    ``on_datagram(data, address)`` and its op is replaced by a new one."""
    def done(op: Any) -> None:
        if op.exception is not None:
            return  # cancelled (the socket closed) or a real error: stop this chain
        n, address = op.result
        if not op.result.truncated:
            on_datagram(bytes(op.buf[:n]), address)
        px.recvfrom(sock, op.buf, done)

    for _ in range(count):
        px.recvfrom(sock, bytearray(MAX_DATAGRAM), done)


def _print(text: str) -> None:
    print(text, flush=True)


# -- server -------------------------------------------------------------------------
class GameServer:
    def __init__(self, px: Proactor, host: str, port: int, rate: float, out: Callable[[str], None] = _print) -> None:
        self.px, self.out = px, out
        self.sock = px.bind((host, port))
        self.players: dict = {}  # address -> [id, x, y, last seq, last client time, last heard, _Seq]
        self.sent = self.received = self.errors = 0
        self.tick_no = 0
        _receive(px, self.sock, self._update)
        self.ticker = _Ticker(px, rate, self._tick)
        self.stats = _Ticker(px, 1.0, self._report)
        self._last = (0, 0, 0)

    def _update(self, data: bytes, address: Any) -> None:
        if len(data) != UPDATE.size:
            return
        magic, cid, seq, sent_at, x, y = UPDATE.unpack(data)
        if magic != UPDATE_MAGIC:
            return
        self.received += 1
        p = self.players.get(address)
        if p is None:
            p = self.players[address] = [cid, x, y, seq, sent_at, 0.0, _Seq()]
        if p[6].see(seq):
            p[1], p[2], p[3], p[4] = x, y, seq, sent_at
        p[5] = time.monotonic()

    def _tick(self, n: int) -> None:
        self.tick_no = n
        now = time.monotonic()
        for address in [a for a, p in self.players.items() if now - p[5] > FORGET_AFTER]:
            del self.players[address]
        body = b"".join(PLAYER.pack(p[0], p[1], p[2]) for p in list(self.players.values())[:MAX_PLAYERS])
        count = min(len(self.players), MAX_PLAYERS)
        for address, p in self.players.items():
            head = SNAP_HEAD.pack(SNAP_MAGIC, n, p[3], p[4], count)
            self.px.sendto(self.sock, head + body, address, self._sent)

    def _sent(self, op: Any) -> None:
        if op.exception is None:
            self.sent += 1
        else:
            self.errors += 1

    def _report(self, n: int) -> None:
        received, sent, lost = self.received, self.sent, sum(p[6].lost for p in self.players.values())
        r0, s0, l0 = self._last
        self._last = (received, sent, lost)
        self.out(f"server t={n}s tick={self.tick_no} clients={len(self.players)} in={received - r0}/s "
                 f"out={sent - s0}/s lost={lost - l0} errors={self.errors}")

    def stop(self) -> None:
        self.ticker.stop()
        self.stats.stop()
        self.px.close(self.sock)


# -- client -------------------------------------------------------------------------
class GameClients:
    """``count`` players, each with its own socket, sending an update per tick."""

    def __init__(self, px: Proactor, server: tuple, count: int, rate: float,
                 out: Callable[[str], None] = _print) -> None:
        self.px, self.server, self.out = px, server, out
        self.socks = []
        self.seq = [0] * count
        self.snaps = [_Seq() for _ in range(count)]
        self.rtts: list[float] = []
        self.sent = self.errors = 0
        self.all_rtts: list[float] = []
        anywhere = "::" if ":" in server[0] else "0.0.0.0"
        for i in range(count):
            sock = px.bind((anywhere, 0))
            self.socks.append(sock)
            _receive(px, sock, lambda data, addr, i=i: self._snapshot(i, data), count=2)
        self.ticker = _Ticker(px, rate, self._tick)
        self.stats = _Ticker(px, 1.0, self._report)
        self._last = (0, 0, 0)

    def _tick(self, n: int) -> None:
        now = time.monotonic()
        for i, sock in enumerate(self.socks):
            self.seq[i] += 1
            x, y = float(i), float(n % 1000)
            self.px.sendto(sock, UPDATE.pack(UPDATE_MAGIC, i, self.seq[i], now, x, y), self.server, self._sent)

    def _sent(self, op: Any) -> None:
        if op.exception is None:
            self.sent += 1
        else:
            self.errors += 1

    def _snapshot(self, i: int, data: bytes) -> None:
        if len(data) < SNAP_HEAD.size:
            return
        magic, tick, seq, sent_at, players = SNAP_HEAD.unpack_from(data)
        if magic != SNAP_MAGIC:
            return
        self.snaps[i].see(tick)
        if seq:
            rtt = time.monotonic() - sent_at
            self.rtts.append(rtt)
            self.all_rtts.append(rtt)

    def received(self) -> int:
        return sum(s.got for s in self.snaps)

    def lost(self) -> int:
        return sum(s.lost for s in self.snaps)

    def _report(self, n: int) -> None:
        got, sent, lost = self.received(), self.sent, self.lost()
        g0, s0, l0 = self._last
        self._last = (got, sent, lost)
        rtts, self.rtts = self.rtts, []
        rtt = f"rtt avg={1000 * sum(rtts) / len(rtts):.2f}ms max={1000 * max(rtts):.2f}ms" if rtts else "rtt -"
        expected = got - g0 + lost - l0
        loss = 100.0 * (lost - l0) / expected if expected else 0.0
        self.out(f"clients t={n}s players={len(self.socks)} out={sent - s0}/s in={got - g0}/s "
                 f"loss={loss:.1f}% {rtt} errors={self.errors}")

    def stop(self) -> None:
        self.ticker.stop()
        self.stats.stop()
        for sock in self.socks:
            self.px.close(sock)


# -- the command line (hooked into overlapio.cli) -----------------------------------
def add_parsers(sub: Any, positive_int: Callable[[str], int], seconds: Callable[[str], float],
                port: Callable[[str], int], listen_port: Callable[[str], int],
                proactor_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``udp-server`` and ``udp-client`` to the ``overlapio`` parser."""
    def rate(text: str) -> float:
        value = seconds(text)
        if not 0 < value <= 1000:
            raise argparse.ArgumentTypeError(f"the tick rate must be above 0 and at most 1000 Hz, not {text}")
        return value

    def common(p: argparse.ArgumentParser, port_type: Callable[[str], int], host_help: str) -> None:
        p.add_argument("--host", default="127.0.0.1", help=host_help)
        p.add_argument("--port", type=port_type, default=DEFAULT_PORT, help=f"UDP port (default {DEFAULT_PORT})")
        p.add_argument("--rate", type=rate, default=20.0, help="ticks per second (default 20)")
        p.add_argument("--duration", type=seconds, default=0.0,
                       help="seconds to run, then exit (default 0: until Ctrl-C)")
        proactor_options(p)  # --backend, --trace

    p = sub.add_parser("udp-server", help="a 20 Hz UDP game-server loop (port 7778)",
                       description="Ticks at a fixed rate; each tick sends every client a snapshot of all "
                                   "players' positions. Prints a line per second: clients, packets in/out, "
                                   "loss.")
    common(p, listen_port, "address to bind (default 127.0.0.1; :: for IPv6 and IPv4)")
    p = sub.add_parser("udp-client", help="UDP game clients sending an update per tick",
                       description="Each client sends its position every tick and reads the server's "
                                   "snapshots. Prints a line per second: packets out/in, loss, round-trip "
                                   "time; exits 1 if a client never heard from the server.")
    common(p, port, "server address (default 127.0.0.1)")
    p.add_argument("--clients", type=positive_int, default=1, help="number of players (default 1)")


def _run(px: Proactor, duration: float, stop: Callable[[], None]) -> None:
    if duration:
        px.sleep(duration, lambda op: stop())
    try:
        px.run()
    finally:
        stop()


def cmd_udp_server(args: argparse.Namespace, make_proactor: Callable[[argparse.Namespace], Proactor]) -> int:
    with make_proactor(args) as px:
        server = GameServer(px, args.host, args.port, args.rate)
        host, port = server.sock.getsockname()[:2]
        _print(f"udp-server on {host}:{port}, {args.rate:g} Hz ({px.backend_name} backend)")
        done = [False]

        def stop() -> None:
            if not done[0]:
                done[0] = True
                server.stop()
        _run(px, args.duration, stop)
    return 0 if not server.errors else 1


def cmd_udp_client(args: argparse.Namespace, make_proactor: Callable[[argparse.Namespace], Proactor]) -> int:
    with make_proactor(args) as px:
        clients = GameClients(px, (args.host, args.port), args.clients, args.rate)
        _print(f"udp-client: {args.clients} player(s) to {args.host}:{args.port}, {args.rate:g} Hz "
               f"({px.backend_name} backend)")
        done = [False]

        def stop() -> None:
            if not done[0]:
                done[0] = True
                clients.stop()
        _run(px, args.duration, stop)
    silent = sum(1 for s in clients.snaps if not s.got)
    rtts = sorted(clients.all_rtts)
    median = f"{1000 * rtts[len(rtts) // 2]:.2f}ms" if rtts else "-"
    _print(f"udp-client done: sent={clients.sent} received={clients.received()} lost={clients.lost()} "
           f"rtt median={median} errors={clients.errors} silent={silent}")
    if silent:
        print(f"udp-client: {silent} client(s) never heard from the server", file=sys.stderr)
    return 1 if silent or clients.errors else 0
