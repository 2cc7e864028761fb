"""What the benchmark suite runs: workloads, contestants, selection and the run plan.

Workloads
---------
Network (a contestant server process + the C load generator process, loopback TCP):
  pingpong  echo ping-pong: each of N connections sends an M-byte message and reads
            it back fully before sending the next. Full matrix: M = 64 B, 1 KiB,
            64 KiB x N = 1, 10, 100, 1,000 connections; quick: 1 KiB x 1/10/100.
            One message = one round trip. Reports msgs/s, p50/p99 round-trip latency,
            server CPU per message, server peak RSS.
  stream    one connection, pipelined: the client keeps up to 16 x 64 KiB in flight
            and reads the echo back. Reports MB/s (10^6 bytes echoed per second) and
            server CPU per 64 KiB chunk.
  udp       UDP ping-pong: each of N peers (connected datagram sockets) sends an
            M-byte datagram and waits for the server to send it back, then the next.
            Full: M = 64 B, 1 KiB x N = 1, 10; quick: 1 KiB x 10. Reports datagrams/s,
            p50/p99 round trip and server CPU per datagram; a datagram not back within
            1 s counts as an error (the peer sends again). Servers: c-epoll,
            overlapio-<backend>, asyncio-protocol (DatagramProtocol), uvloop-protocol;
            the others have no UDP mode and show as unavailable.
  churn     10 concurrent slots, each: connect + (server) accept + one 64 B exchange
            + close, repeated. Reports connections per second.
  memory    the server holding 1,000 idle connections, each with a pending receive:
            resident memory per connection = (RSS at 1,100 - RSS at 100 conns) / 1000,
            and the same minus the server's own per-connection receive buffer.
In-process (one process per run, see bench/inproc.py):
  timers    schedule and fire 1,000,000 timeouts (libuv's million_timers).
  post      1,000,000 cross-thread posts, completions per second (million_async).
  opcost    submit + complete a trivial op, chained, per second (cost of the core).

Contestants
-----------
Servers: c-epoll (native reference: the machine's limit), overlapio-<backend> and
overlapio-<backend>-plain (the try_send/resubmit server and the one-recv-one-send
server, per backend that overlapio.available_backends() reports usable), asyncio-protocol,
asyncio-buffered, asyncio-streams, uvloop-protocol, uvloop-buffered, uvloop-streams,
overlapio-loop-buffered and overlapio-loop-streams (the asyncio BufferedProtocol and
streams servers on overlapio's asyncio event loop), trio, selectors-raw (a minimal
hand-written selectors loop: the floor for pure Python on readiness I/O).
In-process: overlapio-<backend>, asyncio, uvloop, trio.

Selection (--only)
------------------
Each --only value is a comma-separated list of names or shell-style globs; the
option may be repeated. A name is a workload or a contestant; a contestant pattern
also selects its family (`asyncio` selects asyncio, asyncio-protocol, ...-buffered,
...-streams; `overlapio` selects every overlapio backend). Workload names narrow the
workloads, contestant names narrow the contestants; both kinds may be mixed.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, Optional

NETWORK_WORKLOADS = ("pingpong", "stream", "churn", "udp")
MEMORY_WORKLOAD = "memory"
INPROC_WORKLOADS = ("timers", "post", "opcost")
ALL_WORKLOADS = NETWORK_WORKLOADS + (MEMORY_WORKLOAD,) + INPROC_WORKLOADS

# Ratios are reported against these, when they ran in the same invocation.
BASELINES = ("asyncio-buffered", "uvloop-protocol", "c-epoll")
INPROC_BASELINES = ("asyncio", "uvloop")
# overlapio's event loop running an asyncio server ("overlapio-loop-<server>") is also
# compared with the same server on these loops ("<loop>-<server>").
LOOP_PREFIX = "overlapio-loop-"
SAME_SERVER_LOOPS = ("asyncio", "uvloop")


@dataclass(frozen=True)
class ServerSpec:
    name: str
    script: Optional[str]          # bench/servers/<script>; None for the native server
    args: tuple = ()
    description: str = ""

    @property
    def native(self) -> bool:
        return self.script is None


STATIC_SERVERS = (
    ServerSpec("c-epoll", None, (), "C, epoll, one thread: the machine's limit"),
    ServerSpec("asyncio-protocol", "asyncio_protocol.py", (), "asyncio Protocol"),
    ServerSpec("asyncio-buffered", "asyncio_buffered.py", (), "asyncio BufferedProtocol"),
    ServerSpec("asyncio-streams", "asyncio_streams.py", (), "asyncio streams"),
    ServerSpec("uvloop-protocol", "asyncio_protocol.py", ("--loop", "uvloop"), "uvloop Protocol"),
    ServerSpec("uvloop-buffered", "asyncio_buffered.py", ("--loop", "uvloop"), "uvloop BufferedProtocol"),
    ServerSpec("uvloop-streams", "asyncio_streams.py", ("--loop", "uvloop"), "uvloop streams"),
    # overlapio's asyncio event loop (overlapio.asyncio) running the same two servers,
    # on its default backend (OVERLAPIO_BACKEND, else the platform's)
    ServerSpec("overlapio-loop-buffered", "asyncio_buffered.py", ("--loop", "overlapio"),
               "overlapio event loop, BufferedProtocol"),
    ServerSpec("overlapio-loop-streams", "asyncio_streams.py", ("--loop", "overlapio"),
               "overlapio event loop, streams"),
    ServerSpec("trio", "trio_echo.py", (), "trio serve_tcp"),
    ServerSpec("selectors-raw", "selectors_raw.py", (), "hand-written selectors loop"),
)
STATIC_INPROC = ("asyncio", "uvloop", "trio")


OVERLAPIO_STYLES = ("fast", "plain")  # bench/servers/overlapio_echo.py --style


def overlapio_server(backend: str, style: str = "fast") -> ServerSpec:
    """overlapio-<backend> (try_send + resubmit) or overlapio-<backend>-plain (a recv
    op and a send op per message)."""
    if style == "fast":
        return ServerSpec(f"overlapio-{backend}", "overlapio_echo.py", ("--backend", backend),
                          f"overlapio, {backend} backend")
    return ServerSpec(f"overlapio-{backend}-{style}", "overlapio_echo.py", ("--backend", backend, "--style", style),
                      f"overlapio, {backend} backend, {style} style")


def known_contestant_names(backends: Iterable[str] = ("posix",)) -> list[str]:
    names = [s.name for s in STATIC_SERVERS] + list(STATIC_INPROC)
    names += [overlapio_server(b, style).name for b in backends for style in OVERLAPIO_STYLES]
    return sorted(set(names))


# ----------------------------------------------------------------- selection
class SelectionError(ValueError):
    pass


@dataclass
class Selection:
    workloads: Optional[list[str]] = None       # None = all
    contestants: Optional[list[str]] = None     # patterns; None = all

    def wants_workload(self, w: str) -> bool:
        return self.workloads is None or w in self.workloads

    def wants_contestant(self, name: str) -> bool:
        if self.contestants is None:
            return True
        return any(contestant_matches(name, p) for p in self.contestants)


def contestant_matches(name: str, pattern: str) -> bool:
    """`pattern` selects `name` if it matches as a glob, or names its family
    (`asyncio` -> asyncio-buffered; `overlapio` -> overlapio-posix)."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + "-*")


def parse_only(values: Optional[Iterable[str]], backends: Iterable[str] = ("posix", "winsock")) -> Selection:
    """Parse repeated --only values into a Selection; unknown names raise
    SelectionError listing what is valid. Overlapio names are accepted for any
    backend name given in `backends` (plus anything matching overlapio-*)."""
    if not values:
        return Selection()
    workloads: list[str] = []
    patterns: list[str] = []
    known = known_contestant_names(backends)
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            wl = [w for w in ALL_WORKLOADS if fnmatch.fnmatchcase(w, item)]
            cs = [c for c in known if contestant_matches(c, item)]
            if wl and not cs:
                workloads.extend(w for w in wl if w not in workloads)
            elif cs and not wl:
                if item not in patterns:
                    patterns.append(item)
            elif wl and cs:
                raise SelectionError(f"--only {item!r} matches both workloads {wl} and contestants {cs}")
            elif item.startswith("overlapio-") and "*" not in item:
                patterns.append(item)  # a backend we do not know of yet; checked at run time
            else:
                raise SelectionError(
                    f"--only {item!r} matches nothing. Workloads: {', '.join(ALL_WORKLOADS)}. "
                    f"Contestants: {', '.join(known)} (globs and family prefixes allowed).")
    return Selection(workloads or None, patterns or None)


def parse_size(s: str) -> int:
    s = s.strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    if s.endswith("K"):
        mult, s = 1024, s[:-1]
    elif s.endswith("M"):
        mult, s = 1024 * 1024, s[:-1]
    try:
        v = int(s) * mult
    except ValueError:
        raise SelectionError(f"bad size {s!r} (use e.g. 64, 1K, 64K)") from None
    if v <= 0:
        raise SelectionError("sizes must be positive")
    return v


def parse_int_list(s: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise SelectionError(f"bad {what} list {s!r} (use e.g. 1,10,100)") from None
    if not out or any(x <= 0 for x in out):
        raise SelectionError(f"{what} must be positive integers")
    return out


def size_label(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}MiB"
    if n % 1024 == 0:
        return f"{n // 1024}KiB"
    return f"{n}B"


# ----------------------------------------------------------------- settings & plan
@dataclass
class Settings:
    quick: bool = False
    repeats: int = 5
    duration: float = 3.0
    warmup: float = 1.0
    sizes: list[int] = field(default_factory=lambda: [64, 1024, 65536])
    conns: list[int] = field(default_factory=lambda: [1, 10, 100, 1000])
    stream_size: int = 65536
    stream_conns: int = 1
    churn_size: int = 64
    churn_conns: int = 10
    udp_sizes: list[int] = field(default_factory=lambda: [64, 1024])
    udp_conns: list[int] = field(default_factory=lambda: [1, 10])
    mem_conns: int = 1000
    mem_base_conns: int = 100
    mem_bufsize: int = 4096
    mem_repeats: int = 3
    inproc_n: dict = field(default_factory=lambda: {"timers": 1_000_000, "post": 1_000_000,
                                                    "opcost": 1_000_000})
    server_bufsize: int = 65536

    @classmethod
    def for_mode(cls, quick: bool) -> "Settings":
        if not quick:
            return cls()
        return cls(quick=True, repeats=3, duration=0.5, warmup=0.25, sizes=[1024],
                   conns=[1, 10, 100], mem_repeats=1, udp_sizes=[1024], udp_conns=[10],
                   inproc_n={"timers": 100_000, "post": 100_000, "opcost": 100_000})


@dataclass(frozen=True)
class Task:
    workload: str
    contestant: str
    repeat: int
    size: Optional[int] = None
    conns: Optional[int] = None
    n: Optional[int] = None        # operation count of an in-process workload

    @property
    def config(self) -> str:
        if self.workload in NETWORK_WORKLOADS:
            return f"{size_label(self.size)} x{self.conns}"
        if self.workload == "memory":
            return f"{self.conns} idle"
        return f"n={self.n:,}"


def rotate(seq: list, k: int) -> list:
    """The order of contestants in repeat k: rotated so that no contestant always
    runs first (cold) or right after the same neighbour."""
    if not seq:
        return []
    k %= len(seq)
    return seq[k:] + seq[:k]


def build_plan(s: Settings, sel: Selection, servers: list[str], inproc: list[str]) -> list[Task]:
    """All measurements in run order. Each repeat is one full pass over every
    workload configuration, and within each configuration the contestants run
    back to back in a rotated order: contestants are interleaved within a repeat,
    and a passing disturbance hits one repeat of many, not many repeats of one."""
    servers = [c for c in servers if sel.wants_contestant(c)]
    inproc = [c for c in inproc if sel.wants_contestant(c)]
    plan: list[Task] = []
    for r in range(s.repeats):
        order = rotate(servers, r)
        if sel.wants_workload("pingpong"):
            for size in s.sizes:
                for n in s.conns:
                    plan += [Task("pingpong", c, r, size, n) for c in order]
        if sel.wants_workload("stream"):
            plan += [Task("stream", c, r, s.stream_size, s.stream_conns) for c in order]
        if sel.wants_workload("churn"):
            plan += [Task("churn", c, r, s.churn_size, s.churn_conns) for c in order]
        if sel.wants_workload("udp"):
            for size in s.udp_sizes:
                for n in s.udp_conns:
                    plan += [Task("udp", c, r, size, n) for c in order]
        if sel.wants_workload("memory") and r < s.mem_repeats:
            plan += [Task("memory", c, r, s.mem_bufsize, s.mem_conns) for c in order]
        iorder = rotate(inproc, r)
        for w in INPROC_WORKLOADS:
            if sel.wants_workload(w):
                plan += [Task(w, c, r, n=s.inproc_n[w]) for c in iorder]
    return plan


def estimate_seconds(plan: list[Task], s: Settings) -> float:
    """Rough wall time of a plan (process start-up + warm-up + window + teardown)."""
    t = 0.0
    for task in plan:
        if task.workload in NETWORK_WORKLOADS:
            t += 0.2 + s.warmup + s.duration
        elif task.workload == "memory":
            t += 2.0
        else:
            t += 0.4 + task.n * 4e-6
    return t
