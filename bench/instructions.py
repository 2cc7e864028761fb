"""Instructions per echoed message, counted by valgrind's callgrind.

    python -m bench.instructions [--conns 10] [--size 1024] [--messages 200] [--loops] [NAME ...]

NAME is a Python server contestant (overlapio-posix, overlapio-uring-plain,
asyncio-buffered, overlapio-loop-streams, selectors-raw, ...; default: overlapio-<backend>
and overlapio-<backend>-plain for posix and, where it is available, uring, then
asyncio-buffered and selectors-raw). ``--loops`` counts the asyncio BufferedProtocol
and streams servers on each event loop instead: asyncio, uvloop and overlapio's
(asyncio-buffered, uvloop-buffered, overlapio-loop-buffered, and the same three
-streams). Each runs under ``valgrind --tool=callgrind`` twice,
driven by a ping-pong peer in this process: once for M messages and once for 6 M
(M = --messages per connection). The difference of the two totals, divided by the
5 M x conns extra messages, is the user-space cost of one message with start-up
excluded. Kernel time is not counted, and the count does not depend on what else
the machine is doing: on a shared, noisy machine this separates changes of a few
per cent that timed runs cannot. Under valgrind a server runs ~50x slower, so each
poll finds more sockets ready than in a timed run: per-poll costs weigh less here.
"""
from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Optional, Sequence

from .harness import SERVERS_DIR, child_env
from .workloads import OVERLAPIO_STYLES, STATIC_SERVERS, ServerSpec, overlapio_server

DEFAULT_BACKENDS = ("posix", "uring")  # those available here are counted by default
DEFAULT_OTHERS = ("asyncio-buffered", "selectors-raw")
# --loops: the asyncio BufferedProtocol and streams servers on each event loop
LOOP_SERVERS = ("asyncio-buffered", "uvloop-buffered", "overlapio-loop-buffered",
                "asyncio-streams", "uvloop-streams", "overlapio-loop-streams")
BASELINE = "asyncio-buffered"  # the ratios printed are to this one

# Runs a server script that exits when its stdin is closed, so that callgrind writes
# its counts (a process killed by a signal writes none). No signal is involved: a
# watcher thread blocked in read() costs the server nothing per message. An overlapio
# server also exits by itself once every connection ended (--exit-after): valgrind
# runs no other thread, and delivers no signal, while one blocks in io_uring_enter.
_LAUNCH = (
    "import os, runpy, sys, threading\n"
    "def watch():\n"
    "    while os.read(0, 4096): pass\n"  # (not sys.stdin: its lock would stall a normal exit)
    "    os._exit(0)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "sys.path.insert(0, os.path.dirname(sys.argv[1]))\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def spec_named(name: str) -> ServerSpec:
    for spec in STATIC_SERVERS:
        if spec.name == name:
            if spec.native:
                raise SystemExit(f"error: {name} is native code; callgrind counts of it say nothing about Python")
            return spec
    if name.startswith("overlapio-"):
        backend, _, style = name[len("overlapio-"):].partition("-")
        if style in OVERLAPIO_STYLES[1:]:
            return overlapio_server(backend, style)
        if backend and not style:
            return overlapio_server(backend)
    known = ", ".join(s.name for s in STATIC_SERVERS if not s.native)
    styles = "".join(f", overlapio-<backend>-{style}" for style in OVERLAPIO_STYLES[1:])
    raise SystemExit(f"error: unknown server {name!r} (known: overlapio-<backend>{styles}, {known})")


def default_names() -> list[str]:
    """Both overlapio styles on each default backend this machine has, then the rest."""
    import overlapio

    available = overlapio.available_backends()
    return [overlapio_server(b, style).name for b in DEFAULT_BACKENDS if available.get(b, (False,))[0]
            for style in OVERLAPIO_STYLES] + list(DEFAULT_OTHERS)


def pingpong(port: int, conns: int, per_conn: int, size: int) -> None:
    """``conns`` connections, each sending ``size`` bytes and reading them back fully,
    ``per_conn`` times; raises if an echo comes back wrong."""
    msg = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sel = selectors.DefaultSelector()
    state = {}
    try:
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(msg)
            state[s] = [per_conn, bytearray()]
            sel.register(s, selectors.EVENT_READ)
        while state:
            events = sel.select(60)
            if not events:
                raise TimeoutError("the server stopped answering")
            for key, _ in events:
                s = key.fileobj
                left, got = state[s]
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed a connection")
                got += chunk
                if len(got) < size:
                    continue
                if bytes(got) != msg:
                    raise ValueError("the echo differs from what was sent")
                got.clear()
                state[s][0] = left - 1
                if left == 1:
                    sel.unregister(s)
                    s.close()
                    del state[s]
                else:
                    s.sendall(msg)
    finally:
        for s in state:
            s.close()
        sel.close()


def count(spec: ServerSpec, conns: int, per_conn: int, size: int, valgrind: str) -> int:
    """Instructions the server ran, start to exit, echoing conns x per_conn messages."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        extra = ("--exit-after", str(conns)) if spec.script == "overlapio_echo.py" else ()
        argv = [valgrind, "-q", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _LAUNCH,
                str(SERVERS_DIR / spec.script), "--port", "0", "--bufsize", "65536", *spec.args, *extra]
        # A fixed hash seed: both runs then start up alike, instruction for instruction.
        env = dict(child_env(), PYTHONHASHSEED="0")
        with open(os.path.join(tmp, "stderr"), "w+") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                    text=True)
            try:
                line = proc.stdout.readline().split()
                if line[:1] != ["READY"]:
                    err.seek(0)
                    raise SystemExit(f"error: {spec.name} did not start: {' '.join(line) or err.read()[-500:]}")
                pingpong(int(line[1]), conns, per_conn, size)
            finally:
                try:
                    if extra:  # it exits by itself: stdin stays open, so that it exits one way only
                        proc.wait(60)
                    proc.stdin.close()  # the other servers' cue to exit
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.returncode != 0:
                err.seek(0)
                raise SystemExit(f"error: {spec.name} exited with status {proc.returncode}: {err.read()[-500:]}")
        with open(out) as f:
            for text in f:
                if text.startswith(("summary:", "totals:")):
                    return int(text.split()[1])
    raise SystemExit(f"error: no total in callgrind's output for {spec.name}")


def per_message(spec: ServerSpec, conns: int, messages: int, size: int, valgrind: str) -> float:
    few = count(spec, conns, messages, size, valgrind)
    many = count(spec, conns, 6 * messages, size, valgrind)
    return (many - few) / (5 * messages * conns)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions",
                                description=__doc__.split("\n\n")[1].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="server contestants (default: overlapio-{posix,uring}[-plain] where available, "
                        f"{' '.join(DEFAULT_OTHERS)})")
    p.add_argument("--conns", type=int, default=10, help="connections (default 10)")
    p.add_argument("--size", type=int, default=1024, help="message bytes (default 1024)")
    p.add_argument("--messages", type=int, default=200,
                   help="messages per connection of the shorter run; the longer runs 6x (default 200)")
    p.add_argument("--loops", action="store_true",
                   help=f"count the servers on each asyncio event loop: {' '.join(LOOP_SERVERS)}")
    a = p.parse_args(argv)
    if a.conns < 1 or a.size < 1 or a.messages < 1:
        p.error("--conns, --size and --messages must be at least 1")
    if a.loops and a.names:
        p.error("--loops names its servers itself: give either --loops or NAMEs")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("error: valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    specs = [spec_named(n) for n in (a.names or (LOOP_SERVERS if a.loops else default_names()))]
    print(f"{a.size}-byte ping-pong, {a.conns} connections, Python {sys.version.split()[0]}")
    results = {}
    for spec in specs:
        results[spec.name] = per_message(spec, a.conns, a.messages, a.size, valgrind)
        print(f"{spec.name:24s} {results[spec.name]:9,.0f} instructions per message", flush=True)
    for name, base_name in ratio_pairs(list(results)):
        print(f"{name} / {base_name}: {results[name] / results[base_name]:.2f}")
    return 0


def ratio_pairs(names: list) -> list:
    """The (server, baseline) pairs whose ratios are printed: each server to
    asyncio-buffered, and an overlapio-loop-KIND server to asyncio-KIND and uvloop-KIND
    (the same server code on the other loops)."""
    pairs = [(name, BASELINE) for name in names if name != BASELINE and BASELINE in names]
    for name in names:
        if name.startswith("overlapio-loop-"):
            kind = name[len("overlapio-loop-"):]
            pairs += [(name, other) for other in (f"asyncio-{kind}", f"uvloop-{kind}")
                      if other in names and other != BASELINE]
    return pairs


if __name__ == "__main__":
    sys.exit(main())
