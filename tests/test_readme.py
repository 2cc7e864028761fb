"""The README's code runs as written (only the port is changed)."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_echo_server_echoes():
    code = _blocks("python")[0]
    assert "px.run()" in code
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", code.replace("7777", str(port))],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        with conn:
            payload = bytes(range(256)) * 400
            conn.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = conn.recv(65536)
                assert chunk, "server closed early"
                got += chunk
            assert got == payload
    finally:
        proc.kill()
        proc.wait()


def test_readme_commands_name_real_subcommands():
    from overlapio.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for block in _blocks("sh"):
        for line in block.splitlines():
            m = re.search(r"\boverlapio (\w+)", line)
            if m:
                assert m.group(1) in sub, line
