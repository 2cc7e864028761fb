"""The README's asyncio echo server runs as written (only the port is changed)."""
from __future__ import annotations

import errno
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(b for b in blocks if "overlapio.asyncio.run(" in b)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PortTaken(Exception):
    """Another process took the free port before the example bound it (the
    machine runs other tests); try another port."""


def _echo_once(code: str, port: int) -> None:
    env = dict(os.environ, OVERLAPIO_BACKEND="posix")
    proc = subprocess.Popen([sys.executable, "-c", code.replace("7777", str(port))], stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)

    def fail(why: str) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=20)[1]
        if f"[Errno {errno.EADDRINUSE}]" in err:
            raise _PortTaken(err)
        raise AssertionError(f"{why}; the server said: {err}")

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    fail("the server did not start")
                time.sleep(0.05)
        with conn:
            payload = random.Random(0).randbytes(4 << 20)
            writer = threading.Thread(target=conn.sendall, args=(payload,))
            writer.start()
            got = bytearray()
            while len(got) < len(payload):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    fail(f"the connection closed after {len(got)} bytes")
                got += chunk
            writer.join()
            assert got == payload
        assert proc.poll() is None, "the server stopped by itself"
        proc.send_signal(signal.SIGINT)  # Ctrl-C: run() raises KeyboardInterrupt, as asyncio.run does
        _, err = proc.communicate(timeout=20)
        assert "KeyboardInterrupt" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.skipif(sys.platform == "win32", reason="stops the server with SIGINT")
def test_readme_asyncio_echo_server():
    code = _example()
    assert "7777" in code
    for _ in range(3):
        try:
            _echo_once(code, _free_port())
            return
        except _PortTaken:
            continue
    pytest.fail("three free ports were taken by other processes before the example could bind them")
