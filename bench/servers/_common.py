"""Shared start-up code for the benchmark's server contestants (bench/servers/*.py).

Every server is started by the harness as its own process:
    python bench/servers/<name>.py [--host H] [--port 0] [--bufsize N] [--proto tcp|udp] [--probe]
and prints one line on stdout when it is ready to accept:
    READY <port> <per-connection user buffer bytes>
(the buffer size lets the memory workload subtract user buffers from RSS per
connection), or, when a dependency is missing:
    UNAVAILABLE <reason>          (exit status 3)
`--probe` only checks that the dependencies import and prints "OK". With `--proto
udp` a server echoes each datagram to its sender instead (the udp workload); one
without a UDP mode answers UNAVAILABLE.
"""
from __future__ import annotations

import argparse
import sys

EXIT_UNAVAILABLE = 3


def parse_args(description: str, extra=None, udp: bool = False) -> argparse.Namespace:
    """The common options; ``udp``: the server has a ``--proto udp`` mode."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = let the OS pick (reported on READY)")
    p.add_argument("--bufsize", type=int, default=65536, help="receive buffer size")
    p.add_argument("--probe", action="store_true", help="check dependencies, print OK, exit")
    p.add_argument("--proto", choices=("tcp", "udp"), default="tcp", help="echo TCP streams or UDP datagrams")
    if extra:
        extra(p)
    args = p.parse_args()
    if args.proto == "udp" and not udp:
        unavailable("this contestant has no UDP echo server")
    return args


def ready(port: int, per_conn_buffer: int) -> None:
    print(f"READY {port} {per_conn_buffer}", flush=True)


def unavailable(reason: str) -> "NoReturn":  # noqa: F821
    reason = " ".join(str(reason).split()) or "unknown reason"
    print(f"UNAVAILABLE {reason}", flush=True)
    sys.exit(EXIT_UNAVAILABLE)


def probe_ok() -> None:
    print("OK", flush=True)
    sys.exit(0)


LOOPS = ("asyncio", "uvloop", "overlapio")


def get_loop_factory(name: str):
    """Return a zero-argument event loop factory for 'asyncio', 'uvloop' or
    'overlapio' (overlapio's asyncio event loop on its default backend:
    ``OVERLAPIO_BACKEND``, else the platform's)."""
    import asyncio

    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as e:
            unavailable(f"uvloop not installed ({e}); pip install uvloop")
        return uvloop.new_event_loop
    if name == "overlapio":
        try:
            import overlapio.asyncio
        except Exception as e:  # the package may be missing or broken: that is "unavailable"
            unavailable(f"cannot import overlapio.asyncio: {type(e).__name__}: {e}")

        def new_loop():
            try:
                return overlapio.asyncio.new_event_loop()
            except Exception as e:  # e.g. OVERLAPIO_BACKEND names a backend this machine lacks
                unavailable(f"overlapio's event loop failed to start: {type(e).__name__}: {e}")
        return new_loop
    unavailable(f"unknown loop {name!r}")


def add_loop_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--loop", choices=LOOPS, default="asyncio")
