"""The README's code runs as written (only the port is changed)."""
from __future__ import annotations

import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_function(code: str) -> str:
    """The ``def serve(conn):`` function of a block, indented as in the echo server."""
    m = re.search(r"^    def serve\(conn\):\n.*?(?=^    def |\Z)", code, re.S | re.M)
    assert m, "no serve() in the block"
    return m.group(0)


@pytest.mark.parametrize("variant", ["as written", "with the try_send/resubmit serve()"])
def test_readme_echo_server_echoes(variant):
    code = _blocks("python")[0]
    assert "px.run()" in code
    if variant != "as written":
        fast = next(b for b in _blocks("python") if "px.resubmit(op)" in b)
        code = code.replace(_serve_function(code), _serve_function(fast).rstrip() + "\n\n")
        assert "try_send" in code
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", code.replace("7777", str(port))],
                            stderr=subprocess.PIPE, text=True)
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
            payload = random.Random(0).randbytes(10 << 20)  # more than the socket takes at once
            writer = threading.Thread(target=conn.sendall, args=(payload,))
            writer.start()  # (a thread: the echo comes back while we send)
            got = bytearray()
            while len(got) < len(payload):
                chunk = conn.recv(65536)
                assert chunk, "server closed early"
                got += chunk
            writer.join()
            assert got == payload
    finally:
        proc.kill()
        proc.wait()


def test_readme_commands_name_real_subcommands():
    from overlapio.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    named = set()
    for block in _blocks("sh"):
        for line in block.splitlines():
            m = re.search(r"\boverlapio ([\w-]+)", line)
            if m:
                assert m.group(1) in sub, line
                named.add(m.group(1))
    # the README must keep showing its commands: a check that matches nothing checks nothing
    missing = {"demo", "server", "client", "backends"} - named
    assert not missing, f"the README's command lines lost: {sorted(missing)}"
