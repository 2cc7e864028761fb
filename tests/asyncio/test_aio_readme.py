"""The README's asyncio echo server runs as written (only the port is changed)."""
from __future__ import annotations

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


@pytest.mark.skipif(sys.platform == "win32", reason="stops the server with SIGINT")
def test_readme_asyncio_echo_server():
    port = _free_port()
    code = _example()
    assert "7777" in code
    env = dict(os.environ, OVERLAPIO_BACKEND="posix")
    proc = subprocess.Popen([sys.executable, "-c", code.replace("7777", str(port))], stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        with conn:
            payload = random.Random(0).randbytes(4 << 20)
            writer = threading.Thread(target=conn.sendall, args=(payload,))
            writer.start()
            got = bytearray()
            while len(got) < len(payload):
                chunk = conn.recv(1 << 20)
                assert chunk, "the server closed early"
                got += chunk
            writer.join()
            assert got == payload
        proc.send_signal(signal.SIGINT)  # Ctrl-C: run() raises KeyboardInterrupt, as asyncio.run does
        _, err = proc.communicate(timeout=20)
        assert "KeyboardInterrupt" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
