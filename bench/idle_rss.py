"""What an idle connection costs the CLI echo server, in resident memory.

    python -m bench.idle_rss                          # this checkout, 3,000 connections
    python -m bench.idle_rss --conns 3000 /work/main .  # several checkouts, same run

For each CHECKOUT (a source tree; default: this one) it starts that tree's
``overlapio server --echo --quiet --port 0`` (``python -S -m overlapio`` from the
tree, so no installed copy is imported: the POSIX backend needs only the
standard library), echoes one message (so the first buffer and the code paths
are in place), reads VmRSS, opens CONNS connections that send nothing, waits
until the server has accepted them all, and reads VmRSS again. Linux only
(/proc). Needs about 2 x CONNS descriptors (``ulimit -n``). RSS, not time: it is
safe on a loaded machine.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

_LISTEN_LINE = re.compile(rb"overlapio server on [^:\s]+:(\d+)")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def measure(pid: int, port: int, conns: int, timeout: float = 60.0) -> tuple[int, int]:
    """``(before, after)`` VmRSS in KiB of the echo server ``pid`` on loopback
    ``port``: after one echo, then with ``conns`` more idle connections open."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as warm:
        warm.sendall(b"warm-up")
        got = b""
        while len(got) < 7:
            got += warm.recv(64)
    time.sleep(0.3)
    fds, before = _fds(pid), rss_kib(pid)
    idle = []
    try:
        for _ in range(conns):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        deadline = time.monotonic() + timeout
        while _fds(pid) < fds + conns:  # accepted, and its first op submitted
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server accepted {_fds(pid) - fds} of {conns} connections in {timeout:g} s")
            time.sleep(0.05)
        time.sleep(0.5)
        return before, rss_kib(pid)
    finally:
        for sock in idle:
            sock.close()


def _server(checkout: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-S", "-m", "overlapio", "server", "--echo", "--quiet", "--port", "0"],
                            cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env={**os.environ, "OVERLAPIO_BACKEND": "posix"})
    for line in iter(proc.stderr.readline, b""):
        m = _LISTEN_LINE.search(line)
        if m:
            return proc, int(m.group(1))
    raise RuntimeError(f"{checkout}: the server exited without its listening line ({proc.wait()})")


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", type=Path, default=[Path(__file__).resolve().parent.parent])
    parser.add_argument("--conns", type=int, default=3000)
    args = parser.parse_args(argv)
    for checkout in args.checkouts:
        proc, port = _server(checkout)
        try:
            before, after = measure(proc.pid, port, args.conns)
        finally:
            proc.kill()
            proc.wait()
        grown = after - before
        print(f"{checkout}: {args.conns} idle connections: RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB "
              f"(+{grown / 1024:.1f} MiB, {grown / args.conns:.1f} KiB each)", flush=True)


if __name__ == "__main__":
    main()
