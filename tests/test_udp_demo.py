"""``overlapio udp-server`` and ``udp-client``, run as real subprocesses."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from cliproc import run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses /proc-free POSIX subprocess handling")


def _server(*args: str) -> "tuple[subprocess.Popen, int]":
    proc = subprocess.Popen([sys.executable, "-m", "overlapio", "udp-server", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    m = re.search(r"udp-server on [^ ]+:(\d+),", first)
    assert m, (first, proc.stderr.read() if proc.poll() is not None else "")
    return proc, int(m.group(1))


def test_fifty_clients_and_a_ticking_server():
    server, port = _server("--duration", "6")
    try:
        r = run("udp-client", "--port", str(port), "--clients", "50", "--duration", "3")
        assert r.returncode == 0, r.stdout + r.stderr
        lines = [line for line in r.stdout.splitlines() if line.startswith("clients t=")]
        assert len(lines) >= 2, r.stdout
        for line in lines[1:]:  # the first second includes the start
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            assert fields["players"] == "50" and fields["errors"] == "0", line
            assert int(fields["out"].rstrip("/s")) >= 400, f"50 players at 20 Hz sent too little: {line}"
            assert int(fields["in"].rstrip("/s")) >= 400, f"too few snapshots came back: {line}"
            assert "rtt avg=" in line
        summary = r.stdout.splitlines()[-1]
        assert summary.startswith("udp-client done:") and "silent=0" in summary and "errors=0" in summary, summary
    finally:
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    stats = [line for line in out.splitlines() if line.startswith("server t=")]
    assert any("clients=50" in line and "in=1000/s" in line for line in stats), out


def test_client_without_a_server_says_so():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("udp-client", "--port", str(port), "--duration", "1.2")
    assert r.returncode == 1
    assert "never heard from the server" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_arguments_are_one_line_errors():
    r = run("udp-server", "--rate", "0")
    assert r.returncode == 2 and "tick rate" in r.stderr
    r = run("udp-client", "--clients", "0")
    assert r.returncode == 2 and "at least 1" in r.stderr
